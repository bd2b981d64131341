// The fields Engine and Replica share: both are processes the node agent runs on one node for
// one volume (Longhorn's InstanceSpec and InstanceStatus).
import { Type } from '@sinclair/typebox';
import { volumeSizeMaxBytes } from '../../lib/limits.ts';
import { Conditions, NameRef, OwnerID, StringEnum, Text } from './common-schemas.ts';

export const instanceDesiredStates = ['running', 'stopped'] as const;
export type InstanceDesiredState = (typeof instanceDesiredStates)[number];

export const instanceStates = ['running', 'stopped', 'error', 'starting', 'stopping', 'unknown'] as const;
export type InstanceState = (typeof instanceStates)[number];

export const instanceSpecProperties = {
  volumeName: NameRef({ description: 'The volume this process serves.' }),
  volumeSize: Type.Integer({ minimum: 0, maximum: volumeSizeMaxBytes, unit: 'bytes', description: 'Volume size in bytes.' }),
  nodeID: Type.Optional(NameRef({ description: 'The node the process runs on; unset until scheduled.' })),
  desireState: StringEnum(instanceDesiredStates, { description: 'Whether the node agent should run the process.' }),
  logRequested: Type.Optional(Type.Boolean({ description: 'Ask the node agent to collect the process log once.' })),
  salvageRequested: Type.Optional(Type.Boolean({ description: 'Start even though every replica failed (salvage).' })),
};

export const instanceStatusProperties = {
  ownerID: OwnerID(),
  currentState: Type.Optional(StringEnum(instanceStates, { description: 'What the node agent last reported.' })),
  ip: Type.Optional(Type.String({ maxLength: 64, description: 'Address the process listens on.' })),
  port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
  pid: Type.Optional(Type.Integer({ minimum: 1, maximum: 4_194_304, description: 'Process id on its node (Shorthorn: the node agent runs each instance as its own process).' })),
  started: Type.Optional(Type.Boolean({ description: 'The process has started at least once since it was created.' })),
  logFetched: Type.Optional(Type.Boolean()),
  salvageExecuted: Type.Optional(Type.Boolean()),
  errorMessage: Type.Optional(Text({ description: 'Why the process is in error.' })),
  conditions: Type.Optional(Conditions()),
};
