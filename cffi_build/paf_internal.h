/*
 * paf_internal.h - what the files of the grouping core share; not installed.
 *
 * The public contract is openpose_plus_paf.h. Behind it, one file per step:
 *   paf.c             version, messages, defaults, argument checks, opp_group
 *   paf_workspace.c   how the caller's one workspace is carved, per step
 *   paf_peaks.c       step 1: peaks
 *   paf_limb_scores.c step 2: limb scores
 *   paf_assignment.c  step 3: assignment
 *   paf_assembly.c    step 4: assembly
 *   track.c           the tracker (uses step 3's optimal assignment)
 * Each public function validates its arguments and calls the step's worker
 * (oppi_*), so opp_group validates once. Internal functions are named oppi_*
 * and hidden: a program linking the static library sees only opp_* (and no
 * clash), the shared library and the Python extension export only opp_*.
 *
 * Compile-time switches:
 *   OPP_NO_SIMD_CLONES  one build of the vectorising loops (no AVX2 clone)
 *   OPP_PLAIN_LOOPS     the steps without their fast paths (peaks: every cell
 *                       against its whole window; limb scores: every pair
 *                       scored in full); same results bit for bit, which
 *                       tests/test_plain_loops.py checks
 */
#ifndef OPP_PAF_INTERNAL_H
#define OPP_PAF_INTERNAL_H

#include "openpose_plus_paf.h"

#include <float.h>
#include <stddef.h>
#include <stdint.h>

#if OPP_VERSION != OPP_VERSION_MAJOR * 10000 + OPP_VERSION_MINOR * 100 + OPP_VERSION_PATCH
#error "OPP_VERSION does not match its parts"
#endif

#if defined(__GNUC__) || defined(__clang__)
#define OPP_INTERNAL __attribute__((visibility("hidden")))
#define NOINLINE __attribute__((noinline)) /* keeps a rare call out of a hot loop's registers */
#else
#define OPP_INTERNAL
#define NOINLINE
#endif

/* The loops that vectorise (peak pre-filter, off-support map, the head
 * samples of every pair, a pair's samples) are compiled twice on x86-64 Linux
 * with GCC: for AVX2, picked at load time where the CPU has it, and for the
 * baseline (SSE2). Same source, same float operations (no FMA), so the same
 * results bit for bit (tests/test_simd_clones.py). */
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(OPP_NO_SIMD_CLONES)
#define SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define SIMD_CLONES
#endif

/* Finite and not NaN, without relying on isfinite() surviving any compiler flags. */
#define IS_FINITE(v) ((v) >= -FLT_MAX && (v) <= FLT_MAX)

/* ---- argument checks (paf.c) --------------------------------------------- */

OPP_INTERNAL int oppi_check_skeleton(const opp_skeleton *s);
OPP_INTERNAL int oppi_check_params(const opp_params *p);
OPP_INTERNAL int oppi_check_size(int height, int width);
/* Every count in 0..max_peaks. */
OPP_INTERNAL int oppi_check_counts(const int *counts, int n, int max_peaks);

/* ---- workspace (paf_workspace.c) ----------------------------------------- */

/* The workspace is carved into sub-arrays, each aligned for any type, so the
 * caller's buffer may have any alignment. The same code computes the size
 * (base == 0) and the pointers, so the two cannot disagree. */
#define WS_ALIGN 16

typedef struct carver {
    uintptr_t base, used;
} carver;

static inline carver carver_at(void *base)
{
    carver c;
    c.base = (uintptr_t)base;
    c.used = 0;
    return c;
}

static inline void *carve(carver *c, size_t count, size_t size)
{
    uintptr_t at = (c->base + c->used + WS_ALIGN - 1) & ~(uintptr_t)(WS_ALIGN - 1);
    c->used = at - c->base + count * size;
    return c->base ? (void *)at : NULL;
}

static inline size_t carved_size(const carver *c) { return c->used + WS_ALIGN; /* slack for aligning base */ }

/* A candidate pair of one limb: peak a of its first part, peak b of its second. */
typedef struct candidate {
    float score;
    int a, b;
} candidate;

/* Inner samples whose lookups the limb-score fast path makes for every pair, branch-free. */
#define HEAD_SAMPLES 3

/* Scratch of step 2 (opp_score_limb). */
typedef struct score_ws {
    float *t;                     /* inner sample positions (opp_score_limb's) */
    float *pax, *pay, *pbx, *pby; /* PAF at each peak of the limb's two parts */
    float *bx, *by;               /* part B's peaks, as plain arrays (they vectorise) */
    int *fails;                   /* per B peak: samples known to fail */
    int *cells;                   /* [HEAD_SAMPLES][max_peaks + 3]: cells of the first inner samples */
    int *keep;                    /* B peaks not rejected by that */
    unsigned char *off;           /* off-support map (H * W) */
    candidate *cands;             /* opp_score_limb's candidates, before the matrix */
} score_ws;

/* Scratch of step 3 (opp_assign_limb). */
typedef struct assign_ws {
    candidate *cands;       /* greedy: every candidate pair */
    uint64_t *keys;         /* greedy: their rank keys */
    unsigned char *used_a, *used_b;
    int *rows, *cols;       /* optimal: peaks that have a candidate at all */
    double *u, *v, *minv;   /* Hungarian potentials */
    int *match, *way;
    unsigned char *done;
} assign_ws;

/* Scratch of step 4 (opp_assemble). A new person always takes at least one
 * peak nobody held before, and peaks never become free again, so K * M rows
 * suffice. */
typedef struct person {
    double sum;   /* peak scores + connection scores */
    double score; /* its person score, once assembled */
    int terms;    /* how many scores are in sum */
    int parts;    /* 0 once merged into another person */
    int absorbed; /* peaks it owns outside its slots: a part's weaker copy (see merge) */
} person;

typedef struct assemble_ws {
    int *owner;     /* [K * M] person holding each peak, -1 if none */
    int *slots;     /* [rows * K] peak index per part, -1 if missing */
    person *people; /* [rows] */
    int *best;      /* [max_people] survivors, best first */
    float *px, *py; /* [M] one part's peak positions (merging fragments) */
} assemble_ws;

/* What opp_group keeps between steps; the steps' scratch is carved after it. */
typedef struct group_ws {
    opp_peak *peaks;              /* [K * M] */
    int *counts;                  /* [K] */
    float *scores;                /* [M * M] a limb's score matrix (optimal assignment only) */
    candidate *cands;             /* [M * M] a limb's candidates */
    float *t;                     /* [paf_samples] inner sample positions (oppi_inner_samples) */
    opp_connection *connections;  /* [L * M] */
    int *connection_counts;       /* [L] */
} group_ws;

OPP_INTERNAL void oppi_carve_score(carver *c, int height, int width, const opp_params *p, score_ws *w);
OPP_INTERNAL void oppi_carve_assign(carver *c, int m, assign_ws *w);
OPP_INTERNAL void oppi_carve_assemble(carver *c, int k, int m, int max_people, assemble_ws *w);
OPP_INTERNAL void oppi_carve_group(carver *c, const opp_skeleton *s, const opp_params *p, group_ws *w);
OPP_INTERNAL size_t oppi_score_ws_size(int height, int width, const opp_params *p);
OPP_INTERNAL size_t oppi_assign_ws_size(int m);
OPP_INTERNAL size_t oppi_assemble_ws_size(const opp_skeleton *s, const opp_params *p);

/* ---- the steps' workers: arguments already checked ----------------------- */

/* Step 1 (paf_peaks.c): opp_find_peaks. */
OPP_INTERNAL int oppi_find_peaks(const float *heatmaps, int height, int width, int num_parts,
                                 const opp_params *p, opp_peak *peaks, int *counts);

/* Step 2 (paf_limb_scores.c). Positions t[0 .. n-3] of a limb's n - 2 inner samples. */
OPP_INTERNAL void oppi_inner_samples(int n, float *t);
/* Every candidate pair (score > 0) of a limb, in order of (a, b), written to
 * out; returns how many. w: its scratch, carved once per frame. */
OPP_INTERNAL int oppi_score_limb(const float *pafs, int height, int width, const opp_skeleton *s,
                                 const opp_params *p, int limb, const opp_peak *peaks, const int *counts,
                                 const float *t, candidate *out, const score_ws *w);
/* Candidates -> the na x nb corner of a score matrix (row stride `stride`), zeros elsewhere. */
OPP_INTERNAL void oppi_scatter_scores(const candidate *cands, int n, int na, int nb, float *scores, int stride);

/* Step 3 (paf_assignment.c): matches n candidates of na x nb peaks into out,
 * returns how many; scores: room for an M x M matrix (optimal only). */
/* The maximum-total matching of an na x nb score matrix (row stride `stride`; a
 * score > 0 is a candidate, 0 none) into out (room for min(na, nb)); returns how
 * many. Uses w's rows, cols, used_a/b, u, v, minv, match, way, done (carved for
 * m >= max(na, nb)). The tracker (track.c) uses it too. */
OPP_INTERNAL int oppi_assign_optimal(const float *scores, int stride, int na, int nb, opp_connection *out,
                                     const assign_ws *w);
OPP_INTERNAL int oppi_assign_candidates(const opp_params *p, candidate *cands, int n, int na, int nb,
                                        float *scores, opp_connection *out, const assign_ws *w);

/* Step 4 (paf_assembly.c): opp_assemble. */
OPP_INTERNAL int oppi_assemble(const opp_skeleton *s, const opp_params *p, const opp_peak *peaks,
                               const int *counts, const opp_connection *connections,
                               const int *connection_counts, void *workspace,
                               float *keypoints, float *person_scores, int *num_people);

#endif /* OPP_PAF_INTERNAL_H */
