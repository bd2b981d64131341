// Fault scenarios (partitions) in CI: see scenario-suite.ts and docs/reliability.md.
import { defineScenarioTests } from './scenario-suite.ts';

defineScenarioTests('partitions', ['S08', 'S10']);
