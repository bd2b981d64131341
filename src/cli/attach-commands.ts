// `shorthorn volume attach|detach`: the API's attach ticket, and on request the host half —
// wait for the engine, print the NBD URI, make a block device (--device) and mount it (--mount,
// --format only where there is no filesystem). Detach undoes the host half in reverse order from
// the record attach left (attachment-state.ts), then drops the ticket.
import { hostname } from 'node:os';
import type { Command } from 'commander';
import type { ShorthornClient } from '../api/client.ts';
import { runClientCommand, seconds, UsageError, withClientOptions, type ClientCommandOptions } from './cli-client.ts';
import { deviceOf, mountOf, readAttachmentState, type AttachmentState } from './attachment-state.ts';
import { HostError } from './host-error.ts';
import { filesystemFormats, setUpDevice, tearDownDevice, type FilesystemFormat } from './local-device.ts';
import { waitAttached, waitDetached } from './volume-watch.ts';

interface AttachOptions extends ClientCommandOptions {
  readonly node?: string;
  readonly maintenance?: boolean;
  readonly attachmentId?: string;
  readonly wait?: boolean;
  readonly device?: boolean;
  readonly mount?: string;
  readonly format?: string;
  readonly timeout: string;
}

interface DetachOptions extends ClientCommandOptions {
  readonly node?: string;
  readonly attachmentId?: string;
  readonly force?: boolean;
  readonly wait?: boolean;
  readonly timeout: string;
}

/** "mounted on /mnt/x" or "a block device (/dev/loop3)", for messages. */
export function describeLocal(state: AttachmentState): string {
  const dir = mountOf(state);
  if (dir !== undefined) return `mounted on ${dir}`;
  const device = deviceOf(state);
  return device === undefined ? 'partly set up as a device' : `a block device (${device})`;
}

/** The node to attach to: --node, else the node named like this host, else the only node. */
async function chooseNode(client: ShorthornClient, given: string | undefined): Promise<string> {
  if (given !== undefined) return given;
  const names = (await client.listNodes()).data.map((node) => node.id);
  const here = hostname();
  if (names.includes(here)) return here;
  if (names.length === 1 && names[0] !== undefined) return names[0];
  throw new UsageError(`give --node: this cluster has ${names.length === 0 ? 'no nodes yet' : `nodes ${names.join(', ')}`} and none is named ${here}`);
}

function requireRoot(what: string): void {
  if (process.getuid?.() !== 0) throw new HostError('refused', `${what} needs root (losetup, mount)`, { hint: 'run it with sudo' });
}

function checkFormat(text: string | undefined): FilesystemFormat | undefined {
  if (text === undefined) return undefined;
  const format = filesystemFormats.find((f) => f === text);
  if (format === undefined) throw new UsageError(`--format must be ${filesystemFormats.join(' or ')}, not ${JSON.stringify(text)}`);
  return format;
}

export function registerAttachCommands(volume: Command): void {
  withClientOptions(volume.command('attach <name>').description('attach a volume to a node; optionally make it a block device here and mount it'))
    .option('--node <node>', 'the node to attach to (default: the node named like this host, or the only node)')
    .option('--maintenance', 'attach without exposing the device (needed for snapshot revert)')
    .option('--attachment-id <id>', 'the ticket id (default shorthorn-ui)')
    .option('--wait', 'wait until attached and print the NBD URI')
    .option('--device', 'also make a Linux block device on this host (implies --wait)')
    .option('--mount <dir>', 'also mount the device on DIR (implies --device)')
    .option('--format <fs>', 'with --mount: make this filesystem (ext4) if the volume has none; never over data')
    .option('--timeout <seconds>', 'how long to wait for the volume to attach (exit code 6)', '120')
    .action(async (name: string, options: AttachOptions) =>
      runClientCommand(options, async (client, out) => {
        const format = checkFormat(options.format);
        if (format !== undefined && options.mount === undefined) throw new UsageError('--format needs --mount DIR');
        const local = options.device === true || options.mount !== undefined;
        if (local && options.maintenance === true) throw new UsageError('--maintenance attaches without a frontend: there is no device to make or mount');
        const timeoutMs = seconds(options.timeout, '--timeout') * 1000;
        if (local) {
          requireRoot('--device and --mount');
          const existing = readAttachmentState(name);
          if (existing !== undefined) {
            throw new HostError('already_set_up', `volume ${name} is already ${describeLocal(existing)} on this host`, { hint: `shorthorn volume detach ${name}` });
          }
        }
        const node = await chooseNode(client, options.node);
        const view = await client.attachVolume(name, {
          hostId: node,
          ...(options.maintenance === true ? { disableFrontend: true } : {}),
          ...(options.attachmentId === undefined ? {} : { attachmentID: options.attachmentId }),
        });
        if (!local && options.wait !== true) {
          out.print(view, () => `volume ${name}: attach to ${node} requested; \`shorthorn volume get ${name}\` shows when it is attached\n`);
          return;
        }
        const attached = await waitAttached(client, name, node, { timeoutMs, maintenance: options.maintenance === true });
        const say = (line: string): void => {
          (out.json ? process.stderr : process.stdout).write(`${line}\n`);
        };
        say(`volume ${name} attached to ${node}${attached.uri === undefined ? ' in maintenance mode (no frontend)' : ''}`);
        if (!local || attached.uri === undefined) {
          out.print({ volume: name, node, uri: attached.uri ?? null }, () => (attached.uri === undefined ? '' : `nbd:     ${attached.uri}\n`));
          return;
        }
        let state: AttachmentState;
        try {
          state = await setUpDevice({ volume: name, node, uri: attached.uri, ...(options.mount === undefined ? {} : { mountDir: options.mount }), ...(format === undefined ? {} : { format }), say });
        } catch (error) {
          say(`volume ${name} stays attached to ${node} (nbd: ${attached.uri}); \`shorthorn volume detach ${name}\` detaches it`);
          throw error;
        }
        const device = deviceOf(state);
        const dir = mountOf(state);
        out.print({ volume: name, node, uri: attached.uri, device: device ?? null, mount: dir ?? null }, () =>
          [`nbd:     ${attached.uri}\n`, device === undefined ? '' : `device:  ${device}\n`, dir === undefined ? '' : `mounted: ${dir}\n`].join(''),
        );
      }),
    );

  withClientOptions(volume.command('detach <name>').description('detach a volume: unmount and remove what attach set up here, then drop the ticket'))
    .option('--node <node>', 'only if attached to this node')
    .option('--attachment-id <id>', 'the ticket id (default shorthorn-ui)')
    .option('--force', 'remove every attachment ticket, whoever made it')
    .option('--wait', 'wait until the volume is detached')
    .option('--timeout <seconds>', 'with --wait: give up after this long (exit code 6)', '120')
    .action(async (name: string, options: DetachOptions) =>
      runClientCommand(options, async (client, out) => {
        const timeoutMs = seconds(options.timeout, '--timeout') * 1000;
        const say = (line: string): void => {
          (out.json ? process.stderr : process.stdout).write(`${line}\n`);
        };
        const state = readAttachmentState(name);
        if (state !== undefined) {
          requireRoot('undoing --device and --mount');
          const what = describeLocal(state);
          await tearDownDevice(state, say);
          say(`volume ${name}: no longer ${what}`);
        }
        const view = await client.detachVolume(name, {
          ...(options.node === undefined ? {} : { hostId: options.node }),
          ...(options.attachmentId === undefined ? {} : { attachmentID: options.attachmentId }),
          ...(options.force === true ? { forceDetach: true } : {}),
        });
        if (options.wait === true) {
          await waitDetached(client, name, timeoutMs);
          out.print(view, () => `volume ${name} detached\n`);
          return;
        }
        out.print(view, () => `volume ${name}: detach requested\n`);
      }),
    );
}
