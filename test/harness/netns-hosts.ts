// Several "hosts" on one machine for end-to-end tests: one network namespace per host (loopback up,
// one veth into a bridge in the root namespace, an address 10.A.B.i/24), so that processes in
// different hosts reach each other only through the bridge, as over a LAN, and a host's link can
// be taken down and brought back. Names carry this test process's pid, so parallel runs do not
// collide; destroy() removes exactly what create made (and says what it could not remove).
// Needs root and iproute2 (`ip netns`, veth, bridge).
import { run } from './daemon.ts';

export interface NetnsHost {
  /** 1-based host number; the last octet of its address. */
  readonly index: number;
  /** The namespace name (for `ip netns exec`). */
  readonly ns: string;
  /** Its IPv4 address on the bridge. */
  readonly address: string;
  /** The root-namespace end of its veth pair: down = the host is cut off. */
  readonly link: string;
}

export interface NetnsHosts {
  readonly hosts: readonly NetnsHost[];
  /** The bridge's address in the root namespace: the test process reaches every host through it. */
  readonly bridgeAddress: string;
  /** `ip netns exec NS command args...` as [command, args] for spawn. */
  inHost(host: NetnsHost, command: string, args: readonly string[]): { command: string; args: string[] };
  /** Cut a host off the network (its veth down) or bring it back. */
  setLink(host: NetnsHost, up: boolean): Promise<void>;
  /** Remove the veths, the bridge and the namespaces this run created. Call after stopping their processes. */
  destroy(): Promise<void>;
}

const ip = (args: readonly string[]): Promise<unknown> => run('ip', args);

export async function createNetnsHosts(count: number): Promise<NetnsHosts> {
  if (count < 1 || count > 200) throw new Error(`host count ${count} out of range`);
  // Interface names are at most 15 bytes: 'sh' + pid (≤ 7 digits) + one letter + the index.
  const prefix = `sh${process.pid}`;
  const subnet = `10.${200 + (process.pid % 50)}.${Math.floor(process.pid / 50) % 250}`;
  const bridge = `${prefix}b`;
  const bridgeAddress = `${subnet}.254`;
  const created: { kind: 'ns' | 'link'; name: string }[] = [];
  const destroy = async (): Promise<void> => {
    const problems: string[] = [];
    // Links first (deleting one end of a veth removes both), then namespaces.
    for (const item of [...created.filter((c) => c.kind === 'link').reverse(), ...created.filter((c) => c.kind === 'ns')]) {
      const result = (await run('ip', item.kind === 'ns' ? ['netns', 'del', item.name] : ['link', 'del', item.name], { allowFailure: true })) as {
        code: number | null; stderr: string;
      };
      if (result.code !== 0 && !/Cannot find device|No such file/.test(result.stderr)) problems.push(`${item.kind} ${item.name}: ${result.stderr.trim()}`);
    }
    created.length = 0;
    if (problems.length > 0) throw new Error(`could not remove: ${problems.join('; ')}`);
  };
  try {
    await ip(['link', 'add', bridge, 'type', 'bridge']);
    created.push({ kind: 'link', name: bridge });
    await ip(['addr', 'add', `${bridgeAddress}/24`, 'dev', bridge]);
    await ip(['link', 'set', bridge, 'up']);
    const hosts: NetnsHost[] = [];
    for (let index = 1; index <= count; index++) {
      const ns = `${prefix}h${index}`;
      const link = `${prefix}v${index}`;
      const peer = `${prefix}p${index}`;
      const address = `${subnet}.${index}`;
      await ip(['netns', 'add', ns]);
      created.push({ kind: 'ns', name: ns });
      await ip(['link', 'add', link, 'type', 'veth', 'peer', 'name', peer]);
      created.push({ kind: 'link', name: link });
      await ip(['link', 'set', peer, 'netns', ns]);
      await ip(['link', 'set', link, 'master', bridge]);
      await ip(['link', 'set', link, 'up']);
      await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      await ip(['-n', ns, 'addr', 'add', `${address}/24`, 'dev', peer]);
      await ip(['-n', ns, 'link', 'set', peer, 'up']);
      hosts.push({ index, ns, address, link });
    }
    return {
      hosts,
      bridgeAddress,
      inHost: (host, command, args) => ({ command: 'ip', args: ['netns', 'exec', host.ns, command, ...args] }),
      setLink: async (host, up) => {
        await ip(['link', 'set', host.link, up ? 'up' : 'down']);
      },
      destroy,
    };
  } catch (error) {
    const cleanup = await destroy().then(() => 'removed what was made', (e: unknown) => (e instanceof Error ? e.message : String(e)));
    throw new Error(`cannot make ${count} network namespaces: ${error instanceof Error ? error.message : String(error)} (${cleanup})`, { cause: error });
  }
}
