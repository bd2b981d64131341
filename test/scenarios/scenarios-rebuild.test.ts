// Fault scenarios (rebuild) in CI: see scenario-suite.ts and docs/reliability.md.
import { defineScenarioTests } from './scenario-suite.ts';

defineScenarioTests('rebuild', ['S18', 'S19']);
