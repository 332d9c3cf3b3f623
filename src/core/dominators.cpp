#include "core/dominators.hpp"

#include <cstddef>
#include <optional>
#include <utility>

namespace nixery {

namespace {

// The dominators of an acyclic graph (every closure, self-references
// dropped) in one pass: in reverse postorder all of a node's predecessors
// come before it, so its dominator is their nearest common ancestor in the
// tree built so far, found by binary lifting in O(log n) rather than by the
// iterative algorithm's climbing one step at a time, which takes in-degree ×
// depth (a popular path referenced along a deep chain). nullopt when a
// predecessor comes later: the graph has a cycle.
std::optional<std::vector<int>>
acyclic_dominators(int root, const std::vector<int>& postorder,
                   const std::vector<std::vector<int>>& predecessors) {
    const auto n = predecessors.size();
    std::size_t levels = 1;
    while ((std::size_t{1} << levels) < n) {
        ++levels;
    }
    // up[k][v]: v's ancestor 2^k steps up (the root above the top).
    std::vector<std::vector<int>> up(levels, std::vector<int>(n, root));
    std::vector<std::size_t> depth(n, 0);
    std::vector<int> idom(n, -1);
    idom[static_cast<std::size_t>(root)] = root;
    const auto ancestor = [&](int a, int b) {
        auto ua = static_cast<std::size_t>(a), ub = static_cast<std::size_t>(b);
        if (depth[ua] < depth[ub]) {
            std::swap(ua, ub);
        }
        for (std::size_t k = levels; k-- > 0;) {
            if (depth[ua] - depth[ub] >= (std::size_t{1} << k)) {
                ua = static_cast<std::size_t>(up[k][ua]);
            }
        }
        if (ua == ub) {
            return static_cast<int>(ua);
        }
        for (std::size_t k = levels; k-- > 0;) {
            if (up[k][ua] != up[k][ub]) {
                ua = static_cast<std::size_t>(up[k][ua]);
                ub = static_cast<std::size_t>(up[k][ub]);
            }
        }
        return up[0][ua];
    };
    // Reverse postorder, skipping the root (last in postorder).
    for (auto it = postorder.rbegin() + 1; it != postorder.rend(); ++it) {
        const auto node = static_cast<std::size_t>(*it);
        int dominator = -1;
        for (const int p : predecessors[node]) {
            if (idom[static_cast<std::size_t>(p)] < 0) {
                return std::nullopt; // not yet done: a cycle
            }
            dominator = dominator < 0 ? p : ancestor(p, dominator);
        }
        const auto d = static_cast<std::size_t>(dominator);
        idom[node] = dominator;
        depth[node] = depth[d] + 1;
        up[0][node] = dominator;
        for (std::size_t k = 1; k < levels; ++k) {
            up[k][node] = up[k - 1][static_cast<std::size_t>(up[k - 1][node])];
        }
    }
    return idom;
}

} // namespace

std::vector<int> immediate_dominators(const std::vector<std::vector<int>>& successors, int root) {
    const auto n = successors.size();
    // Postorder by an explicit stack: closures can be deep.
    std::vector<int> postorder;
    postorder.reserve(n);
    std::vector<char> seen(n, 0);
    std::vector<std::pair<int, std::size_t>> stack;
    stack.emplace_back(root, 0);
    seen[static_cast<std::size_t>(root)] = 1;
    while (!stack.empty()) {
        auto& [node, next] = stack.back();
        const auto& succ = successors[static_cast<std::size_t>(node)];
        if (next < succ.size()) {
            const int s = succ[next++];
            if (!seen[static_cast<std::size_t>(s)]) {
                seen[static_cast<std::size_t>(s)] = 1;
                stack.emplace_back(s, 0);
            }
        } else {
            postorder.push_back(node);
            stack.pop_back();
        }
    }

    std::vector<int> order_of(n, -1); // postorder number; higher is closer to the root
    for (std::size_t i = 0; i < postorder.size(); ++i) {
        order_of[static_cast<std::size_t>(postorder[i])] = static_cast<int>(i);
    }
    std::vector<std::vector<int>> predecessors(n);
    for (std::size_t from = 0; from < n; ++from) {
        if (order_of[from] < 0) {
            continue;
        }
        for (int to : successors[from]) {
            predecessors[static_cast<std::size_t>(to)].push_back(static_cast<int>(from));
        }
    }

    if (auto acyclic = acyclic_dominators(root, postorder, predecessors)) {
        return std::move(*acyclic);
    }
    std::vector<int> idom(n, -1);
    idom[static_cast<std::size_t>(root)] = root;
    const auto intersect = [&](int a, int b) {
        while (a != b) {
            while (order_of[static_cast<std::size_t>(a)] < order_of[static_cast<std::size_t>(b)]) {
                a = idom[static_cast<std::size_t>(a)];
            }
            while (order_of[static_cast<std::size_t>(b)] < order_of[static_cast<std::size_t>(a)]) {
                b = idom[static_cast<std::size_t>(b)];
            }
        }
        return a;
    };
    for (bool changed = true; changed;) {
        changed = false;
        // Reverse postorder, skipping the root (last in postorder).
        for (auto it = postorder.rbegin() + 1; it != postorder.rend(); ++it) {
            const auto node = static_cast<std::size_t>(*it);
            int candidate = -1;
            for (int p : predecessors[node]) {
                if (idom[static_cast<std::size_t>(p)] < 0) {
                    continue;
                }
                candidate = candidate < 0 ? p : intersect(p, candidate);
            }
            if (candidate >= 0 && idom[node] != candidate) {
                idom[node] = candidate;
                changed = true;
            }
        }
    }
    return idom;
}

} // namespace nixery
