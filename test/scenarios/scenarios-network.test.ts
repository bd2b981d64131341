// Fault scenarios (network) in CI: see scenario-suite.ts and docs/reliability.md.
import { defineScenarioTests } from './scenario-suite.ts';

defineScenarioTests('network', ['S06', 'S07']);
