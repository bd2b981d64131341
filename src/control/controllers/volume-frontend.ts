// Maintenance mode (Longhorn's `disableFrontend`): which attachment ticket asks for an engine
// without a frontend, and how that reaches the Volume and Engine specs. The mode is fixed for the
// life of an engine process: a change of the chosen ticket's mode detaches the volume and attaches
// it again (a fresh engine, a new epoch), as Longhorn's attachment controller does when no ticket
// matches the attached parameters. A live switch through the engine's control API would need an
// NBD listener opened and closed under running restores and reverts; the restart reuses the
// attach and detach paths every volume already goes through.
import type { EngineSpec } from '../resources/engine.ts';
import type { AttachmentTicket } from '../resources/volume-attachment.ts';
import type { VolumeSpec } from '../resources/volume.ts';

/** The ticket asks for the engine to run without exposing the volume. */
export function ticketDisablesFrontend(ticket: AttachmentTicket | undefined): boolean {
  return ticket?.parameters?.disableFrontend === true;
}

/**
 * The volume is set to a node but in the other mode than the chosen ticket asks for: it must
 * detach first (its engine runs, or will start, in the wrong mode).
 */
export function frontendModeMismatch(spec: Pick<VolumeSpec, 'nodeID' | 'disableFrontend'>, ticket: AttachmentTicket | undefined): boolean {
  if (spec.nodeID === undefined || ticket === undefined || ticket.nodeID !== spec.nodeID) return false;
  return (spec.disableFrontend === true) !== ticketDisablesFrontend(ticket);
}

/** The Volume spec attached for this ticket: nodeID and the ticket's mode (absent when enabled). */
export function attachSpec(spec: VolumeSpec, ticket: AttachmentTicket): VolumeSpec {
  const { disableFrontend: _d, ...rest } = spec;
  return { ...rest, nodeID: ticket.nodeID, ...(ticketDisablesFrontend(ticket) ? { disableFrontend: true } : {}) };
}

/** The Volume spec detached: neither a node nor a mode. */
export function detachSpec(spec: VolumeSpec): VolumeSpec {
  const { nodeID: _n, disableFrontend: _d, ...rest } = spec;
  return rest;
}

/** The Engine spec an engine is started with: the volume's mode (absent when the frontend is on). */
export function engineFrontendSpec(spec: EngineSpec, volume: Pick<VolumeSpec, 'disableFrontend'>): EngineSpec {
  const { disableFrontend: _d, ...rest } = spec;
  return volume.disableFrontend === true ? { ...rest, disableFrontend: true } : rest;
}
