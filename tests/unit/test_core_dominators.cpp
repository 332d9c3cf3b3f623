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
}

TEST_SUITE_END();
