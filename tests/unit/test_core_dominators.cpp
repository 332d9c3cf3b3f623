#include "core/dominators.hpp"

#include <doctest/doctest.h>

using namespace nixery;

TEST_SUITE_BEGIN("core");

TEST_CASE("immediate_dominators") {
    SUBCASE("diamond: the join is dominated by the root") {
        // 0 → 1, 0 → 2, 1 → 3, 2 → 3, 3 → 4
        const std::vector<std::vector<int>> succ{{1, 2}, {3}, {3}, {4}, {}};
        CHECK(immediate_dominators(succ, 0) == std::vector<int>{0, 0, 0, 0, 3});
    }
    SUBCASE("unreachable nodes have no dominator") {
        const std::vector<std::vector<int>> succ{{1}, {}, {1}};
        CHECK(immediate_dominators(succ, 0) == std::vector<int>{0, 0, -1});
    }
    SUBCASE("a loop back to an ancestor") {
        // 0 → 1 → 2 → 3 → 1, 2 → 4
        const std::vector<std::vector<int>> succ{{1}, {2}, {3, 4}, {1}, {}};
        CHECK(immediate_dominators(succ, 0) == std::vector<int>{0, 0, 1, 2, 2});
    }
    SUBCASE("a long chain does not exhaust the stack") {
        std::vector<std::vector<int>> succ(200000);
        for (int i = 0; i + 1 < 200000; ++i) {
            succ[static_cast<std::size_t>(i)].push_back(i + 1);
        }
        const auto idom = immediate_dominators(succ, 0);
        CHECK(idom[199999] == 199998);
    }
    SUBCASE("a deep chain whose every node also uses one shared path") {
        // 0 → 1 → … → n-1, each of them → n (glibc, say), and 0 → n (popular).
        const int n = 50000;
        std::vector<std::vector<int>> succ(n + 1);
        for (int i = 0; i + 1 < n; ++i) {
            succ[static_cast<std::size_t>(i)] = {i + 1, n};
        }
        succ[static_cast<std::size_t>(n - 1)] = {n};
        const auto idom = immediate_dominators(succ, 0);
        CHECK(idom[static_cast<std::size_t>(n)] == 0);
        CHECK(idom[static_cast<std::size_t>(n - 1)] == n - 2);
    }
    SUBCASE("as the definition says, on random graphs with and without cycles") {
        // X dominates Y when Y is unreachable from the root without X.
        const auto reachable_without = [](const std::vector<std::vector<int>>& succ, int removed) {
            std::vector<char> seen(succ.size(), 0);
            std::vector<int> stack;
            if (removed != 0) {
                stack.push_back(0);
                seen[0] = 1;
            }
            while (!stack.empty()) {
                const auto v = static_cast<std::size_t>(stack.back());
                stack.pop_back();
                for (const int s : succ[v]) {
                    if (s != removed && !seen[static_cast<std::size_t>(s)]) {
                        seen[static_cast<std::size_t>(s)] = 1;
                        stack.push_back(s);
                    }
                }
            }
            return seen;
        };
        unsigned state = 12345;
        const auto next = [&state](unsigned bound) {
            state = state * 1103515245u + 12345u;
            return (state >> 16) % bound;
        };
        for (int round = 0; round < 200; ++round) {
            const auto n = 2 + next(14);
            const bool acyclic = round % 2 == 0;
            std::vector<std::vector<int>> succ(n);
            for (std::size_t from = 0; from < n; ++from) {
                for (std::size_t to = 1; to < n; ++to) {
                    if ((!acyclic || to > from) && to != from && next(4) == 0) {
                        succ[from].push_back(static_cast<int>(to));
                    }
                }
            }
            const auto idom = immediate_dominators(succ, 0);
            const auto reached = reachable_without(succ, -1);
            std::vector<std::vector<char>> without(n);
            for (std::size_t x = 0; x < n; ++x) {
                without[x] = reachable_without(succ, static_cast<int>(x));
            }
            for (std::size_t y = 1; y < n; ++y) {
                if (!reached[y]) {
                    CHECK(idom[y] == -1);
                    continue;
                }
                // The immediate dominator is the strict dominator that all
                // the others dominate: the one dominated by most of them.
                int expected = -1;
                std::size_t most = 0;
                for (std::size_t x = 0; x < n; ++x) {
                    if (x == y || without[x][y]) {
                        continue;
                    }
                    std::size_t above = 0;
                    for (std::size_t z = 0; z < n; ++z) {
                        above += z != x && z != y && !without[z][y] && !without[z][x] ? 1 : 0;
                    }
                    if (expected < 0 || above >= most) {
                        expected = static_cast<int>(x);
                        most = above;
                    }
                }
                CHECK(idom[y] == expected);
            }
        }
    }
}

TEST_SUITE_END();
