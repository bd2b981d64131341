// S09 and S09p (the old engine paused), split brain with a minimum of 2 write replicas
// (split-brain-scenarios.ts), in CI: see scenario-suite.ts and docs/reliability.md.
import { defineScenarioTests } from './scenario-suite.ts';

defineScenarioTests('split brain', ['S09', 'S09p']);
