// Immediate dominators of a directed graph, by the iterative algorithm of
// Cooper, Harvey and Kennedy ("A Simple, Fast Dominance Algorithm", 2001).
//
// Node X dominates Y when every path from the root to Y passes through X;
// the immediate dominator of Y is the closest such X. For layering, the root
// is the image and a store path's immediate dominator is the package that
// alone pulls it in, or the root when several do:
//
//        root                     root
//       /    \                  /  |   \    (E is shared by A and B,
//      A      B       ==>      A   B    E    so root is its dominator)
//       \    /
//         E    .
//
// The algorithm walks the nodes in reverse postorder, setting each node's
// dominator to the nearest common ancestor (in the dominator tree built so
// far) of its processed predecessors, until nothing changes. An acyclic
// graph (a closure) takes one pass, with the common ancestor found by binary
// lifting, so a deep closure costs O(edges × log nodes). Pure: no I/O.
#pragma once

#include <vector>

namespace nixery {

// successors[n] lists the nodes n has edges to. Returns idom[n] for every node:
// the root maps to itself, unreachable nodes to -1.
std::vector<int> immediate_dominators(const std::vector<std::vector<int>>& successors, int root);

} // namespace nixery
