/* l2.c — the L2 model: a fully associative, write-back, write-allocate LRU
 * cache of the profile's L2 size whose lines are tiles (more exactly, tile
 * segments of a fixed number of rows, see run.c), not 32-byte sectors.
 *
 * Why tiles: every tile the schedules move is a set of whole sectors (rows
 * of d * 2 bytes, d a multiple of 16 for the usual head dims) that is
 * always accessed as a unit, so all its sectors share one recency; an LRU
 * over sectors would evict them back to back, i.e. evict the tile. Tracking
 * the tile instead is the same policy at 1/(tile bytes / 32) of the cost:
 * one hash lookup per tile instead of 256 to 1024 per tile, which is what
 * lets `fa2 sim --sweep paper` model L2 in a few seconds. What it does not
 * model: set associativity and the hardware's real replacement policy, the
 * H100's split into two partitions, and sector-level partial hits.
 *
 * Data structure: an open-addressing hash table (linear probing,
 * backward-shift deletion) of indices into a node pool; the nodes form a
 * doubly linked list in recency order. Every operation is O(1). */
#include "config.h"
#include "sim.h"

#include <stdlib.h>
#include <string.h>

typedef struct l2_node {
    uint64_t k1, k2;
    int64_t bytes;
    uint32_t hash;
    uint32_t slot;      /* its position in the hash table */
    int32_t prev, next; /* toward the most / least recently used */
    int16_t launch;     /* the launch that last wrote it, when dirty */
    uint8_t dirty;
} l2_node;

struct sim_l2 {
    int64_t capacity, used;
    int32_t *slot;      /* node index or -1 */
    uint32_t mask;      /* table size - 1 */
    int64_t count;
    l2_node *node;
    int32_t nodes_cap, nodes_used, free_list;
    int32_t head, tail; /* most / least recently used */
    int64_t wb[FA2_SIM_MAX_LAUNCHES];
};

static uint32_t hash2(uint64_t a, uint64_t b)
{
    uint64_t x = a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull);
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 32;
    return (uint32_t)x;
}

sim_l2 *sim_l2_new(int64_t capacity_bytes)
{
    sim_l2 *l2 = calloc(1, sizeof *l2);
    if (!l2)
        return NULL;
    l2->capacity = capacity_bytes;
    l2->mask = 1024 - 1;
    l2->slot = malloc(sizeof(int32_t) * 1024);
    l2->nodes_cap = 512;
    l2->node = malloc(sizeof(l2_node) * (size_t)l2->nodes_cap);
    if (!l2->slot || !l2->node) {
        sim_l2_free(l2);
        return NULL;
    }
    memset(l2->slot, 0xff, sizeof(int32_t) * 1024);
    l2->head = l2->tail = l2->free_list = -1;
    return l2;
}

void sim_l2_free(sim_l2 *l2)
{
    if (!l2)
        return;
    free(l2->slot);
    free(l2->node);
    free(l2);
}

static int64_t find_slot(const sim_l2 *l2, uint64_t k1, uint64_t k2, uint32_t h)
{
    for (uint32_t i = h & l2->mask;; i = (i + 1) & l2->mask) {
        const int32_t n = l2->slot[i];
        if (n < 0)
            return -(int64_t)i - 1; /* empty slot i: not found */
        if (l2->node[n].k1 == k1 && l2->node[n].k2 == k2)
            return i;
    }
}

static int grow_table(sim_l2 *l2)
{
    const uint32_t size = (l2->mask + 1) * 2;
    int32_t *slot = malloc(sizeof(int32_t) * size);
    if (!slot)
        return 0;
    memset(slot, 0xff, sizeof(int32_t) * size);
    for (int32_t n = l2->head; n >= 0; n = l2->node[n].next) {
        uint32_t i = l2->node[n].hash & (size - 1);
        while (slot[i] >= 0)
            i = (i + 1) & (size - 1);
        slot[i] = n;
        l2->node[n].slot = i;
    }
    free(l2->slot);
    l2->slot = slot;
    l2->mask = size - 1;
    return 1;
}

static void unlink_node(sim_l2 *l2, int32_t n)
{
    l2_node *x = &l2->node[n];
    if (x->prev >= 0)
        l2->node[x->prev].next = x->next;
    else
        l2->head = x->next;
    if (x->next >= 0)
        l2->node[x->next].prev = x->prev;
    else
        l2->tail = x->prev;
}

static void push_front(sim_l2 *l2, int32_t n)
{
    l2_node *x = &l2->node[n];
    x->prev = -1;
    x->next = l2->head;
    if (l2->head >= 0)
        l2->node[l2->head].prev = n;
    l2->head = n;
    if (l2->tail < 0)
        l2->tail = n;
}

/* Remove the entry in table slot i (backward-shift deletion). */
static void delete_slot(sim_l2 *l2, uint32_t i)
{
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & l2->mask;
        const int32_t n = l2->slot[j];
        if (n < 0)
            break;
        const uint32_t home = l2->node[n].hash & l2->mask;
        /* move n back to i unless its home lies cyclically in (i, j] */
        const int in_range = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!in_range) {
            l2->slot[i] = n;
            l2->node[n].slot = i;
            i = j;
        }
    }
    l2->slot[i] = -1;
}

static void evict_lru(sim_l2 *l2)
{
    const int32_t n = l2->tail;
    l2_node *x = &l2->node[n];
    if (x->dirty)
        l2->wb[x->launch] += x->bytes;
    delete_slot(l2, x->slot);
    unlink_node(l2, n);
    l2->used -= x->bytes;
    l2->count--;
    x->next = l2->free_list;
    l2->free_list = n;
}

int64_t sim_l2_access(sim_l2 *l2, uint64_t k1, uint64_t k2, int64_t bytes,
                      int write, int launch)
{
    const uint32_t h = hash2(k1, k2);
    int64_t i = find_slot(l2, k1, k2, h);
    if (i >= 0) { /* hit */
        const int32_t n = l2->slot[i];
        if (n != l2->head) {
            unlink_node(l2, n);
            push_front(l2, n);
        }
        if (write) {
            l2->node[n].dirty = 1;
            l2->node[n].launch = (int16_t)launch;
        }
        return 0;
    }
    if (bytes > l2->capacity) { /* cannot be cached: straight to DRAM */
        if (write)
            l2->wb[launch] += bytes;
        return write ? 0 : bytes;
    }
    if ((l2->count + 1) * 4 > (int64_t)l2->mask + 1) { /* load <= 1/4: short probes */
        if (!grow_table(l2))
            return -1;
        i = find_slot(l2, k1, k2, h);
    }
    int32_t n;
    if (l2->free_list >= 0) {
        n = l2->free_list;
        l2->free_list = l2->node[n].next;
    } else {
        if (l2->nodes_used == l2->nodes_cap) {
            if (l2->nodes_cap > (1 << 29))
                return -1;
            l2_node *nn = realloc(l2->node, sizeof(l2_node) * (size_t)l2->nodes_cap * 2);
            if (!nn)
                return -1;
            l2->node = nn;
            l2->nodes_cap *= 2;
        }
        n = l2->nodes_used++;
    }
    /* insert at the free slot the probe ended on, then evict from the cold
     * end (backward shifts keep every node's slot up to date) */
    l2_node *x = &l2->node[n];
    x->k1 = k1;
    x->k2 = k2;
    x->bytes = bytes;
    x->hash = h;
    x->dirty = (uint8_t)(write != 0);
    x->launch = (int16_t)launch;
    x->slot = (uint32_t)(-i - 1);
    l2->slot[x->slot] = n;
    push_front(l2, n);
    l2->count++;
    l2->used += bytes;
    while (l2->used > l2->capacity)
        evict_lru(l2); /* never n: it is the most recent and fits alone */
    return write ? 0 : bytes;
}

void sim_l2_flush(sim_l2 *l2)
{
    for (int32_t n = l2->head; n >= 0; n = l2->node[n].next)
        if (l2->node[n].dirty) {
            l2->wb[l2->node[n].launch] += l2->node[n].bytes;
            l2->node[n].dirty = 0;
        }
}

int64_t sim_l2_writeback(const sim_l2 *l2, int launch)
{
    return l2->wb[launch];
}
