/**
 * Exact linear sum assignment (the rectangular assignment problem), as scipy's
 * `linear_sum_assignment`: the shortest augmenting path algorithm of Jonker–Volgenant in Crouse's
 * form (D. F. Crouse, "On implementing 2D rectangular assignment algorithms", 2016), which scipy
 * implements, with the same tie rule (a free column wins a tie). The npm solvers either pull in a
 * matrix library or run the O(n^4) Munkres; this is O(n^2 m) with no dependency.
 */
import { VitkitError } from '../errors.js';

export interface Assignment {
  /** assigned row indices, ascending */
  rows: Int32Array;
  /** the column of each of `rows` */
  cols: Int32Array;
}

/** col4row (nr) for a cost matrix (nr, nc) with nr <= nc */
function solve(cost: ArrayLike<number>, nr: number, nc: number): Int32Array {
  const u = new Float64Array(nr), v = new Float64Array(nc), shortest = new Float64Array(nc);
  const path = new Int32Array(nc).fill(-1), col4row = new Int32Array(nr).fill(-1), row4col = new Int32Array(nc).fill(-1);
  const SR = new Uint8Array(nr), SC = new Uint8Array(nc), remaining = new Int32Array(nc);
  for (let cur = 0; cur < nr; cur++) {
    let minVal = 0, numRemaining = nc;
    for (let it = 0; it < nc; it++) remaining[it] = nc - it - 1;
    SR.fill(0); SC.fill(0); shortest.fill(Infinity);
    let sink = -1, i = cur;
    while (sink === -1) {
      let index = -1, lowest = Infinity;
      SR[i] = 1;
      for (let it = 0; it < numRemaining; it++) {
        const j = remaining[it]!;
        const r = minVal + cost[i * nc + j]! - u[i]! - v[j]!;
        if (r < shortest[j]!) { path[j] = i; shortest[j] = r; }
        if (shortest[j]! < lowest || (shortest[j] === lowest && row4col[j] === -1)) { lowest = shortest[j]!; index = it; }
      }
      minVal = lowest;
      if (minVal === Infinity || index < 0) throw new VitkitError('linear sum assignment: the cost matrix is infeasible (no finite assignment)');
      const j = remaining[index]!;
      if (row4col[j] === -1) sink = j; else i = row4col[j]!;
      SC[j] = 1;
      remaining[index] = remaining[--numRemaining]!;
    }
    u[cur] += minVal;
    for (let r = 0; r < nr; r++) if (SR[r] && r !== cur) u[r] += minVal - shortest[col4row[r]!]!;
    for (let c = 0; c < nc; c++) if (SC[c]) v[c] -= minVal - shortest[c]!;
    let j = sink;
    for (;;) {
      const r = path[j]!;
      row4col[j] = r;
      const prev = col4row[r]!;
      col4row[r] = j;
      j = prev;
      if (r === cur) break;
    }
  }
  return col4row;
}

/**
 * The assignment of min(nr, nc) rows to distinct columns with the least total cost, for a cost
 * matrix (nr, nc) row-major; rows ascending (scipy's output order). NaN or -Infinity costs are an error.
 */
export function linearSumAssignment(cost: ArrayLike<number>, nr: number, nc: number): Assignment {
  if (!Number.isInteger(nr) || !Number.isInteger(nc) || nr < 0 || nc < 0 || cost.length !== nr * nc) {
    throw new VitkitError(`linear sum assignment: expected a cost matrix of (${nr}, ${nc}) = ${nr * nc} values but received ${cost.length}`);
  }
  for (let k = 0; k < cost.length; k++) {
    const c = cost[k]!;
    if (Number.isNaN(c) || c === -Infinity) throw new VitkitError(`linear sum assignment: cost matrix entry (${Math.floor(k / Math.max(nc, 1))}, ${k % Math.max(nc, 1)}) is ${c}`);
  }
  if (nr === 0 || nc === 0) return { rows: new Int32Array(0), cols: new Int32Array(0) };
  if (nr <= nc) {
    const col4row = solve(cost, nr, nc);
    return { rows: Int32Array.from({ length: nr }, (_, i) => i), cols: col4row };
  }
  // more rows than columns: solve the transpose (nc, nr), then order the pairs by row
  const t = new Float64Array(nr * nc); // (nc, nr)
  for (let i = 0; i < nr; i++) for (let j = 0; j < nc; j++) t[j * nr + i] = cost[i * nc + j]!;
  const row4col = solve(t, nc, nr); // for each column, its row
  const order = Array.from({ length: nc }, (_, j) => j).sort((a, b) => row4col[a]! - row4col[b]!);
  return { rows: Int32Array.from(order, (j) => row4col[j]!), cols: Int32Array.from(order) };
}
