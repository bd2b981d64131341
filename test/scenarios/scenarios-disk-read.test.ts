// Fault scenarios (disk-read) in CI: see scenario-suite.ts and docs/reliability.md.
import { defineScenarioTests } from './scenario-suite.ts';

defineScenarioTests('disk-read', ['S14', 'S16']);
