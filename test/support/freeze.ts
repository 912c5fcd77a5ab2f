/**
 * Freezes a PostgreSQL node with SIGSTOP (postmaster and every backend): the kernel still
 * accepts and acknowledges TCP, but nothing answers — a server that "vanished" as far as
 * any client can tell, without network namespaces. Always thaw before teardown.
 */
import { execFileSync } from 'node:child_process';
import type { PgCluster } from '../../lib/testing/pg-cluster.js';
import { postmasterPid } from '../../lib/testing/processes.js';

function processTree(root: number): number[] {
  const out: number[] = [root];
  let children = '';
  try {
    children = execFileSync('pgrep', ['-P', String(root)], { encoding: 'utf8' });
  } catch {
    // pgrep exits 1 when there is no child
  }
  for (const line of children.split('\n')) {
    const pid = Number(line.trim());
    if (Number.isInteger(pid) && pid > 0) out.push(pid);
  }
  return out;
}

/**
 * Stops every process of `name`; returns the function that resumes them (idempotent).
 * @param cluster the cluster
 * @param name the node
 */
export function freezeNode(cluster: PgCluster, name: string): () => void {
  const pid = postmasterPid(cluster.node(name).dataDir);
  if (pid === undefined) throw new Error(`${name} is not running`);
  // The postmaster first, so that it forks nothing while its children are listed.
  process.kill(pid, 'SIGSTOP');
  for (const p of processTree(pid).slice(1)) {
    try {
      process.kill(p, 'SIGSTOP');
    } catch {
      // exited meanwhile
    }
  }
  let thawed = false;
  return () => {
    if (thawed) return;
    thawed = true;
    for (const p of processTree(pid)) {
      try {
        process.kill(p, 'SIGCONT');
      } catch {
        // exited meanwhile
      }
    }
  };
}
