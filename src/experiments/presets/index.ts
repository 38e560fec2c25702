/** The paper's figures as named experiment presets (configs as data; `sharpness-lab config NAME` prints one). */
import { InputError } from '../../errors.ts';
import { type ExperimentConfig, type ExperimentConfigInput, parseExperimentConfig } from '../config.ts';
import anisotropySweep from './anisotropy-sweep.ts';
import depth from './depth.ts';
import initScale from './init-scale.ts';
import layerBalance from './layer-balance.ts';
import sgdVsGd from './sgd-vs-gd.ts';
import sharpeningLinear from './sharpening-linear.ts';
import sharpeningMnist from './sharpening-mnist.ts';
import sharpeningTeacher from './sharpening-teacher.ts';

/** Presets by name, in the paper's figure order. */
export const PRESETS: Readonly<Record<string, ExperimentConfigInput>> = {
  'init-scale': initScale,
  'sharpening-linear': sharpeningLinear,
  'sharpening-teacher': sharpeningTeacher,
  'sharpening-mnist': sharpeningMnist,
  'anisotropy-sweep': anisotropySweep,
  'sgd-vs-gd': sgdVsGd,
  'layer-balance': layerBalance,
  depth,
};

export const PRESET_NAMES = Object.keys(PRESETS);

/** The raw config of a preset (a deep copy: callers may edit it); unknown names are input errors. */
export function presetConfig(name: string): ExperimentConfigInput {
  const preset = PRESETS[name];
  if (!preset) {
    throw new InputError('preset', `unknown preset '${name}' (presets: ${PRESET_NAMES.join(', ')})`);
  }
  return JSON.parse(JSON.stringify(preset)) as ExperimentConfigInput;
}

/** A preset, parsed and validated (full form; `applyQuick` gives the quick one). */
export function loadPreset(name: string): ExperimentConfig {
  return parseExperimentConfig(presetConfig(name));
}
