/**
 * How far each current replica is known to have replayed WAL (from the lag monitor's rounds
 * and from read-your-writes checks), for read-your-writes reads: a replica known to have
 * replayed a write's position serves the read without a check.
 * @module
 */
import type { DiscoveredNode } from '../topology/node.js';
import { selectCaughtUpReplica } from '../topology/select.js';
import type { CaughtUpSelection, ReplicaTieBreak } from '../topology/select.js';
import type { TopologySnapshot } from '../topology/snapshot.js';

/** The highest replay position seen on each current replica. */
export class ReplayedPositions {
  readonly #byAddress = new Map<string, bigint>();
  readonly #get = (address: string): bigint | undefined => this.#byAddress.get(address);

  /**
   * Records that the replica at `address` has replayed at least `lsn` (ignored when it is not
   * one of `replicas`, or a higher position is known).
   * @param address the replica
   * @param lsn the position
   * @param replicas the current replicas
   */
  note(address: string, lsn: bigint, replicas: readonly DiscoveredNode[]): void {
    const known = this.#byAddress.get(address);
    if (known !== undefined && known >= lsn) return;
    if (!replicas.some((r) => r.address === address)) return;
    this.#byAddress.set(address, lsn);
  }

  /**
   * Forgets the nodes that are not replicas any more.
   * @param replicas the current replicas
   */
  prune(replicas: readonly DiscoveredNode[]): void {
    for (const address of [...this.#byAddress.keys()]) {
      if (!replicas.some((r) => r.address === address)) this.#byAddress.delete(address);
    }
  }

  /**
   * `selectCaughtUpReplica` with what is known here.
   * @param t the topology
   * @param load busy-ness of the node pool at an address
   * @param position the position the read must see
   * @param allowVerify whether a replica not known to be caught up may be checked
   * @param turn the round-robin counter
   * @param tieBreak how equally busy replicas are ordered
   */
  select(t: TopologySnapshot, load: (address: string) => number, position: bigint, allowVerify: boolean, turn: number, tieBreak: ReplicaTieBreak): CaughtUpSelection {
    return selectCaughtUpReplica(t, load, this.#get, position, allowVerify, turn, tieBreak);
  }
}
