// Fault scenarios (every replica died: salvage) in CI: see scenario-suite.ts and docs/reliability.md.
import { defineScenarioTests } from './scenario-suite.ts';

defineScenarioTests('salvage', ['S03', 'S04', 'S17']);
