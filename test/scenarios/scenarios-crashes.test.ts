// Fault scenarios (crashes) in CI: see scenario-suite.ts and docs/reliability.md.
import { defineScenarioTests } from './scenario-suite.ts';

defineScenarioTests('crashes', ['S02', 'S05']);
