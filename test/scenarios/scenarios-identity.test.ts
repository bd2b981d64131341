// Fault scenarios (replica identity, chain operations and expansion during and after a rebuild)
// in CI: see scenario-suite.ts and docs/reliability.md.
import { defineScenarioTests } from './scenario-suite.ts';

defineScenarioTests('identity and chain operations', ['S28', 'S20', 'S25']);
