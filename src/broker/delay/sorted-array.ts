/** Small helpers for ascending arrays of numbers kept sorted by insertion (binary search). */

/** Index of the first element >= value. */
export function lowerBound(values: readonly number[], value: number): number {
  let low = 0;
  let high = values.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (values[mid]! < value) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** Inserts `value` in order unless it is already there. */
export function insertSorted(values: number[], value: number): void {
  const index = lowerBound(values, value);
  if (values[index] !== value) values.splice(index, 0, value);
}
