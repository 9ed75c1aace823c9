"""Near-duplicate clustering steps, as pure functions over one key group each (the shuffles are in pipelines/).

Candidate pairs come from LSH buckets as a *star*: every member is linked to the bucket's smallest id, never
all pairs, so a boilerplate bucket of n documents costs n edges, not n^2/2. Optionally an edge is kept only
if the signature-estimated Jaccard reaches the threshold (a false-positive check).

Connected components use alternating large-star / small-star rounds (Kiveris et al., "Connected Components
in MapReduce and Beyond", SoCC 2014): each round is one shuffle of the edge list, the number of rounds grows
with the logarithm of the component diameter, and when no edge changes every component is a star around its
smallest id, which becomes the component id (`cluster_id`). Each round shuffles every remaining edge twice (both
directions): about 2 x 2 x edges x ~40 bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

import numpy as np

from dedup.minhash import estimated_jaccard

Edge = tuple[str, str]


def band_prints(keys: list[int]) -> bytes:
    """The low 32 bits of each band key, as bytes: travels with every band key so a bucket can tell which
    earlier band a pair also shares (star_edges). Two different band keys agree here with chance 2^-32."""
    return (np.asarray(keys, dtype=np.uint64) & np.uint64(0xFFFFFFFF)).astype("<u4").tobytes()


def _share_earlier_band(a: bytes, b: bytes, band: int) -> bool:
    return band > 0 and bool(np.any(np.frombuffer(a, "<u4", band) == np.frombuffer(b, "<u4", band)))


def star_edges(
    members: Iterable[tuple], threshold: float, verify: bool, band: int = 0
) -> Iterator[Edge]:
    """(member, center) edges of one LSH bucket of `band`; center = smallest doc id. Two passes, flat memory.

    Members are (doc id, check values, band prints or None). A pair found in several bands is emitted by the
    first band that finds it only (band prints), so every edge leaves the buckets once, not once per shared
    band (up to 14 times for a template's copies), and no shuffle has to remove the copies."""
    center, center_sig, center_prints = None, None, None
    for doc_id, sig, prints in members:
        if center is None or doc_id < center:
            center, center_sig, center_prints = doc_id, sig, prints
    if center is None:
        return
    for doc_id, sig, prints in members:
        if doc_id == center:
            continue
        if prints is not None and _share_earlier_band(prints, center_prints, band):
            continue
        if verify and estimated_jaccard(sig, center_sig) < threshold:
            continue
        yield doc_id, center


def large_star(node: str, neighbors: Iterable[str]) -> Iterator[Edge]:
    """Link every larger neighbor of `node` to the smallest id in node's closed neighborhood."""
    nbrs = set(neighbors)
    m = min(nbrs | {node})
    for v in nbrs:
        if v > node:
            yield v, m


def small_star(node: str, neighbors: Iterable[str]) -> Iterator[Edge]:
    """Link node and its smaller-or-equal neighbors to the smallest of them. Only the smaller neighbors are
    held: a star's center, with every member as a larger neighbor, holds none."""
    smaller = {v for v in neighbors if v <= node}
    m = min(smaller | {node})
    for v in smaller | {node}:
        if v != m:
            yield v, m


def both_directions(edge: Edge) -> Iterator[Edge]:
    u, v = edge
    if u != v:
        yield u, v
        yield v, u


class Neighbors(NamedTuple):
    """What a combiner can know of a node's neighbor list without holding it: the two smallest distinct
    neighbors and how many edges (copies included) the node has. It decides every star step for a node of any
    degree: the smallest id in the closed neighborhood, whether the node breaks the star shape, and whether the
    node is a hub whose edges are stepped one by one instead of grouped (pipelines/near_dedup.py)."""

    first: str
    second: str | None
    count: int


def merge_neighbors(parts: Iterable[Neighbors | None]) -> Neighbors | None:
    smallest: set[str] = set()
    count = 0
    for part in parts:
        if part is None:
            continue
        count += part.count
        smallest.update(x for x in (part.first, part.second) if x is not None)
        smallest = set(sorted(smallest)[:2])
    if not smallest:
        return None
    two = sorted(smallest)
    return Neighbors(two[0], two[1] if len(two) > 1 else None, count)


def closed_min(node: str, nb: Neighbors) -> str:
    """The smallest id among node and its neighbors: the node's component id once the graph is stars."""
    return min(node, nb.first)


def breaks_star(node: str, nb: Neighbors) -> bool:
    """Converged graphs are stars around their smallest id (or pairs): a node with two or more distinct
    neighbors must be smaller than all of them. No node breaking it <=> every component is such a star, and a
    large-star/small-star round then returns its input unchanged."""
    return nb.second is not None and nb.first < node


def large_star_edge(node: str, neighbor: str, smallest: str) -> Iterator[Edge]:
    """large_star for one edge of a hub, given the smallest id of the hub's closed neighborhood."""
    if neighbor > node:
        yield neighbor, smallest


def star_root(node: str, neighbors: Iterable[str]) -> tuple[str, str]:
    """(node, smallest id among node and its neighbors): the component id once the graph is stars."""
    return node, min(set(neighbors) | {node})


def rounds_to_unroll(max_rounds: int, small_input_bytes: int, input_bytes: int | None) -> int:
    """How many large-star/small-star rounds a run's graph holds: none for inputs of at most
    `small_input_bytes` (dedup.near.small_input_bytes; `input_bytes` None = not all sizes known), else
    `max_rounds`. The graph is fixed before the run starts, so the choice rests on what the driver knows then."""
    if input_bytes is not None and small_input_bytes > 0 and input_bytes <= small_input_bytes:
        return 0
    return max_rounds


def components_in_one_group(edges: Iterable[Edge]) -> dict[str, str]:
    """node -> the smallest id of its component, for a graph held whole (union-find, each root the smaller id).

    Why: the rounds cost a run the same few tenths of a second whether or not they shuffle anything, and a
    graph of at most dedup.near.max_group edges (every run of a small crawl, pipelines/near_dedup.py) is
    finished here in one group instead. The component id is the one the rounds give (`closed_min` of a star is
    its smallest id), so the outputs are the same either way."""
    parent: dict[str, str] = {}

    def root(node: str) -> str:
        top = node
        while parent[top] != top:
            top = parent[top]
        while parent[node] != top:  # path compression: later lookups take one step
            parent[node], node = top, parent[node]
        return top

    for u, v in edges:
        parent.setdefault(u, u)
        parent.setdefault(v, v)
        a, b = root(u), root(v)
        if a != b:
            parent[max(a, b)] = min(a, b)
    return {node: root(node) for node in parent}


def survivor_key(doc_id: str, quality: float | None, order: tuple = ()) -> tuple:
    """Sort key of a cluster member: the smallest key survives. Highest quality score first (members without a
    score rank after every scored one), then `order` (dedup.exact.survivor_order; the smallest doc id when
    empty), so the choice is deterministic."""
    return (-quality if quality is not None and quality == quality else float("inf"), *(order or (doc_id,)))


def _local_rounds(edges: Iterable[Edge], rounds: int) -> tuple[set[Edge], int]:
    """(edge set at the fixpoint or after `rounds`, rounds that changed it), in memory."""
    current = {tuple(sorted(e)) for e in edges if e[0] != e[1]}
    for used in range(rounds):
        before = current
        for step in (large_star, small_star):
            adj: dict[str, set[str]] = {}
            for u, v in current:
                adj.setdefault(u, set()).add(v)
                adj.setdefault(v, set()).add(u)
            current = {tuple(sorted(e)) for n, nb in adj.items() for e in step(n, nb)}
        if current == before:
            return current, used
    return current, rounds


def rounds_to_converge(edges: Iterable[Edge], rounds: int = 50) -> int:
    """Reference: the large-star/small-star rounds that change the graph before it is stars."""
    return _local_rounds(edges, rounds)[1]


def connected_components_local(edges: Iterable[Edge], rounds: int = 50) -> dict[str, str]:
    """Reference implementation in memory (tests and small inputs): node -> component id."""
    current, _ = _local_rounds(edges, rounds)
    adj: dict[str, set[str]] = {}
    for u, v in current:
        adj.setdefault(u, set()).add(v)
        adj.setdefault(v, set()).add(u)
    return dict(star_root(n, nb) for n, nb in adj.items())
