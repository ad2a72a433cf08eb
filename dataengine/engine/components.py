"""Connected components by alternating large-star and small-star steps (Kiveris et al. 2014).

"Connected Components in MapReduce and Beyond" (SoCC 2014): each step is one shuffle of
the edges by node, so the algorithm runs on whatever :meth:`ReducePlan.step` runs on
(DuckDB on the driver, a Dask or Spark shuffle), and no step holds more than one node's
neighbourhood together. With ``m(u)`` the smallest of ``u`` and its neighbours:

* **large-star**: every node ``u`` links each *larger* neighbour ``v`` to ``m(u)``;
* **small-star**: every node ``u`` links itself and each *smaller* neighbour to the
  smallest of them.

Both keep the components and shrink every node's label, and together they converge in
O(log n) rounds in practice (O(log^2 n) proven), where label propagation needs as many
rounds as the graph's diameter (a chain of n documents: n rounds). A round changes nothing
exactly when the graph has become stars whose centres are the smallest node of their
component: then every edge reads ``(node, component)``.

"Changed" counts are computed inside each partition: a large-star changes the edges of
``u`` unless ``m(u) = u``; a small-star changes them when ``u`` has more than one smaller
neighbour. When both are zero in a round, the edges are stars (see
docs/dedup.md#connected-components for the argument).
"""

from __future__ import annotations

from dataengine.core.errors import DataEngineError
from dataengine.core.reduce_steps import Input, ReducePlan, Relation

#: Both directions of each edge, keyed by the first: u sees all its neighbours.
LARGE_STAR_INPUT = "SELECT a AS u, b AS v FROM e UNION ALL SELECT b AS u, a AS v FROM e"
#: Each edge once, keyed by its larger end: u sees its smaller neighbours.
SMALL_STAR_INPUT = "SELECT greatest(a, b) AS u, least(a, b) AS v FROM e"


def large_star(con) -> str:
    con.execute("CREATE OR REPLACE TEMP TABLE cc_nb AS SELECT DISTINCT u, v FROM e WHERE u <> v")
    con.execute("CREATE OR REPLACE TEMP TABLE cc_min AS SELECT u, least(u, min(v)) AS m FROM cc_nb GROUP BY u")
    return "SELECT DISTINCT n.v AS a, m.m AS b FROM cc_nb n JOIN cc_min m USING (u) WHERE n.v > n.u"


LARGE_STAR_CHANGED = "SELECT count(*) FROM cc_nb n JOIN cc_min m USING (u) WHERE n.v > n.u AND m.m < n.u"


def small_star(con) -> str:
    con.execute("CREATE OR REPLACE TEMP TABLE cc_nb AS SELECT DISTINCT u, v FROM e WHERE u <> v")
    con.execute("CREATE OR REPLACE TEMP TABLE cc_min AS SELECT u, min(v) AS m, count(*) AS k FROM cc_nb GROUP BY u")
    return """SELECT DISTINCT a, b FROM (
                  SELECT n.v AS a, m.m AS b FROM cc_nb n JOIN cc_min m USING (u) WHERE n.v <> m.m
                  UNION ALL SELECT u AS a, m AS b FROM cc_min)"""


SMALL_STAR_CHANGED = "SELECT coalesce(sum(k - 1), 0) FROM cc_min"


def connected_components(plan: ReducePlan, edges: Relation, max_rounds: int = 64) -> tuple[Relation, int]:
    """Components of the undirected graph ``edges(a, b)`` (BIGINT nodes).

    Returns ``(labels, rounds)``: ``labels(a, b)`` has one row per node that has an edge and
    is not the smallest of its component, ``b`` being that smallest node. Raises after
    ``max_rounds`` rounds without convergence.
    """
    if max_rounds < 1:
        raise DataEngineError("connected components: max_rounds must be at least 1")
    current = edges
    for round_no in range(1, max_rounds + 1):
        large = plan.step(f"components round {round_no} large-star", {"e": Input(current, "u", LARGE_STAR_INPUT)},
                          sql=large_star, stats={"changed": LARGE_STAR_CHANGED})
        if current is not edges:
            plan.drop(current)
        small = plan.step(f"components round {round_no} small-star", {"e": Input(large, "u", SMALL_STAR_INPUT)},
                          sql=small_star, stats={"changed": SMALL_STAR_CHANGED})
        plan.drop(large)
        current = small
        if large.stats["changed"] == 0 and small.stats["changed"] == 0:
            return current, round_no
    raise DataEngineError(
        f"connected components did not converge in {max_rounds} rounds "
        f"({large.stats['changed'] + small.stats['changed']:,} edges still changing); raise the round limit"
    )
