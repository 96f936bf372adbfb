/** Class names without file access: the checkpoint's own, a given ImageNet-1k list for 1000-class models, else class_<i>. */

/**
 * Labels for a model with K classes: `names` when it holds K of them; else, for K = 1000, the
 * ImageNet-1k list `imagenet` returns (when given); else `class_<i>`.
 */
export function labelsFrom(K: number, names?: readonly string[] | null, imagenet?: () => readonly string[]): string[] {
  if (names && names.length === K) return [...names];
  if (K === 1000 && imagenet) {
    const all = imagenet();
    if (all.length === 1000) return [...all];
  }
  return Array.from({ length: K }, (_, i) => `class_${i}`);
}
