// S29 (live engine replacement while writing; engine-switch-scenarios.ts).
import { defineScenarioTests } from './scenario-suite.ts';

defineScenarioTests('engine switch', ['S29']);
