// Fault scenarios (disk) in CI: see scenario-suite.ts and docs/reliability.md.
import { defineScenarioTests } from './scenario-suite.ts';

defineScenarioTests('disk', ['S11', 'S12', 'S13']);
