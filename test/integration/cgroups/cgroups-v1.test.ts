// cgroup v1 driver on this (hybrid) host's real kernel.
import { cgroupScenarios } from './scenarios.js';

cgroupScenarios('v1');
