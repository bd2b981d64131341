// Fault scenarios S20 (snapshot operations and trims during a rebuild) and S15 (bit rot at rest):
// run with SCENARIO_LONG=1, or when SCENARIOS names them, not in every CI run (about 1 minute each
// on the shared machine; their bugs have in-process regression tests: test/integration/
// rebuild-rot.test.ts). See scenario-suite.ts and docs/reliability.md.
import { defineScenarioTests } from './scenario-suite.ts';

const ids = ['S20', 'S15'];
const named = (process.env['SCENARIOS'] ?? '').split(',');
if (process.env['SCENARIO_LONG'] === '1' || ids.some((id) => named.includes(id))) defineScenarioTests('chain operations and bit rot', ids);
