// Fault scenarios (replica identity; expansion during and after a rebuild) in CI: see
// scenario-suite.ts and docs/reliability.md. S20 and S15 are in scenarios-chain-ops.test.ts
// (SCENARIO_LONG=1 only, to keep the CI time down).
import { defineScenarioTests } from './scenario-suite.ts';

defineScenarioTests('identity and expansion', ['S28', 'S25']);
