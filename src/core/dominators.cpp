#include "core/dominators.hpp"

#include <cstddef>
#include <utility>

namespace nixery {

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
