/**
 * Stacks interned as a prefix tree: each node is one frame (function and
 * line) under its caller's node, so a stack is stored as its leaf node
 * and stacks that share callers share memory.
 *
 * Nodes are only ever appended and a child always comes after its parent,
 * which lets aggregation sum from the last node to the first in one pass.
 */
export class StackTree {
  /** Parent node; -1 for the root. */
  readonly parents: number[] = [-1];
  /** Function id; -1 for the root. */
  readonly functions: number[] = [-1];
  readonly lines: number[] = [0];
  /**
   * True when the node's function does not occur in any ancestor: the
   * outermost call of that function on the stack. Counting only these
   * nodes counts a recursive function once per stack.
   */
  readonly outermost: boolean[] = [false];
  private readonly children = new Map<string, number>();

  /** The root node: the empty stack. */
  static readonly ROOT = 0;

  get size(): number {
    return this.parents.length;
  }

  /**
   * Returns the node of the stack whose frames are
   * `functions[start..end)` and `lines[start..end)`, outermost first,
   * adding nodes that do not exist yet. Each function id is replaced by
   * `functionMap[id]` first.
   */
  intern(
    functions: ArrayLike<number>,
    lines: ArrayLike<number>,
    start: number,
    end: number,
    functionMap: ArrayLike<number>,
  ): number {
    let node = StackTree.ROOT;
    for (let i = start; i < end; i++) {
      const fn = functionMap[functions[i]] ?? functions[i];
      const key = `${node}:${fn}:${lines[i]}`;
      let child = this.children.get(key);
      if (child === undefined) {
        child = this.add(node, fn, lines[i]);
        this.children.set(key, child);
      }
      node = child;
    }
    return node;
  }

  /** Returns the frames of a node's stack, outermost first. */
  frames(node: number): Array<{ function: number; line: number }> {
    const frames = [];
    for (let n = node; n !== StackTree.ROOT; n = this.parents[n]) {
      frames.push({ function: this.functions[n], line: this.lines[n] });
    }
    return frames.reverse();
  }

  /** Returns the number of frames on a node's stack. */
  depth(node: number): number {
    let depth = 0;
    for (let n = node; n !== StackTree.ROOT; n = this.parents[n]) {
      depth++;
    }
    return depth;
  }

  private add(parent: number, fn: number, line: number): number {
    let outermost = true;
    for (let n = parent; n !== StackTree.ROOT; n = this.parents[n]) {
      if (this.functions[n] === fn) {
        outermost = false;
        break;
      }
    }
    this.parents.push(parent);
    this.functions.push(fn);
    this.lines.push(line);
    this.outermost.push(outermost);
    return this.parents.length - 1;
  }
}
