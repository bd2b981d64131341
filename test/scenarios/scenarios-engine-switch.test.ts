// S29 (live engine replacement while writing; engine-switch-scenarios.ts) and S27 (wall-clock
// jumps under libfaketime; clock-scenarios.ts).
import { defineScenarioTests } from './scenario-suite.ts';

defineScenarioTests('engine switch and clock jumps', ['S29', 'S27']);
