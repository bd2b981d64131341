// Fault scenarios (processes) in CI: see scenario-suite.ts and docs/reliability.md.
import { defineScenarioTests } from './scenario-suite.ts';

defineScenarioTests('processes', ['S00', 'S01']);
