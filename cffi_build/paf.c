/*
 * paf.c - the grouping core declared in openpose_plus_paf.h.
 *
 * Layout: validation, workspace carving, then the four steps in pipeline order
 * (peaks, limb scores, assignment, assembly), then opp_group. Each public
 * function validates and calls a static worker, so opp_group validates once.
 */
#include "openpose_plus_paf.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#if OPP_VERSION != OPP_VERSION_MAJOR * 10000 + OPP_VERSION_MINOR * 100 + OPP_VERSION_PATCH
#error "OPP_VERSION does not match its parts"
#endif

/* Keeps a rarely called function out of a hot loop's registers. */
#if defined(__GNUC__) || defined(__clang__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif

/* The loops that vectorise (peak pre-filter, off-support map, the head
 * samples of every pair, a pair's samples) are compiled twice on x86-64 Linux
 * with GCC: for AVX2, picked at load time where the CPU has it, and for the
 * baseline (SSE2). Same source, same float operations (no FMA), so the same
 * results bit for bit; on this kind of machine 15 % fewer instructions and
 * 6-12 % less time at 10-20 people. -DOPP_NO_SIMD_CLONES builds one version. */
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(OPP_NO_SIMD_CLONES)
#define SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define SIMD_CLONES
#endif

/* Finite and not NaN, without relying on isfinite() surviving any compiler flags. */
#define IS_FINITE(v) ((v) >= -FLT_MAX && (v) <= FLT_MAX)

/* Build a limb's off-support map when pairs * (max_fails + 1) * SUPPORT_PAYOFF
 * >= map cells: a lookup saves about this many times what a cell costs to map;
 * but not when more than 1/SUPPORT_FRAC of the cells of every SUPPORT_STEP-th
 * row are support (noise), which leaves too little to reject. */
#ifndef SUPPORT_STEP
#define SUPPORT_STEP 16
#endif
#ifndef SUPPORT_FRAC
#define SUPPORT_FRAC 4
#endif
#ifndef SUPPORT_PAYOFF
#define SUPPORT_PAYOFF 16
#endif

int opp_version(void) { return OPP_VERSION; }

const char *opp_strerror(int code)
{
    switch (code) {
    case OPP_OK: return "success";
    case OPP_WARN_PEAKS_TRUNCATED: return "more peaks than max_peaks: the strongest were kept";
    case OPP_WARN_PEOPLE_TRUNCATED: return "more people than max_people: the best were kept";
    case OPP_WARN_PEAKS_TRUNCATED | OPP_WARN_PEOPLE_TRUNCATED:
        return "more peaks than max_peaks and more people than max_people: the best were kept";
    case OPP_ERR_NULL_POINTER: return "a required pointer is NULL";
    case OPP_ERR_SIZE: return "map height or width outside 1..OPP_MAX_SIDE";
    case OPP_ERR_CHANNELS: return "channel count does not match the skeleton";
    case OPP_ERR_SKELETON: return "skeleton counts or indices out of range";
    case OPP_ERR_PARAMS: return "a grouping parameter is out of range";
    case OPP_ERR_WORKSPACE: return "workspace smaller than opp_workspace_size()";
    case OPP_ERR_ARGUMENT: return "an argument (limb index, count or connection) is out of range";
    default: return "unknown status code";
    }
}

void opp_default_params(opp_params *p)
{
    if (!p) return;
    p->peak_threshold = 0.15f;
    p->nms_radius = 1;
    p->max_peaks = 64;
    p->paf_samples = 10;
    p->paf_sample_threshold = 0.05f;
    p->min_sample_fraction = 0.8f;
    p->max_limb_length = 0.0f;
    p->assignment = OPP_ASSIGN_GREEDY;
    p->min_parts = 3;
    p->min_person_score = 0.2f;
    p->max_people = 64;
}

/* ---- validation --------------------------------------------------------- */

static int check_skeleton(const opp_skeleton *s)
{
    int l, npafs;
    if (!s) return OPP_ERR_NULL_POINTER;
    if (s->num_parts < 1 || s->num_parts > OPP_MAX_PARTS) return OPP_ERR_SKELETON;
    if (s->num_limbs < 0 || s->num_limbs > OPP_MAX_LIMBS) return OPP_ERR_SKELETON;
    if (s->num_limbs == 0) return OPP_OK;
    if (!s->limb_parts || !s->limb_pafs) return OPP_ERR_NULL_POINTER;
    npafs = 2 * s->num_limbs;
    for (l = 0; l < npafs; l += 2) {
        int a = s->limb_parts[l], b = s->limb_parts[l + 1];
        if (a < 0 || a >= s->num_parts || b < 0 || b >= s->num_parts || a == b) return OPP_ERR_SKELETON;
        if (s->limb_pafs[l] < 0 || s->limb_pafs[l] >= npafs ||
            s->limb_pafs[l + 1] < 0 || s->limb_pafs[l + 1] >= npafs) return OPP_ERR_SKELETON;
    }
    return OPP_OK;
}

static int check_params(const opp_params *p)
{
    if (!p) return OPP_ERR_NULL_POINTER;
    /* Written as "accept" tests, so that NaN fails every one of them.
     * peak_threshold >= 0 keeps every peak's score positive: 0 means "missing". */
    if (!(p->peak_threshold >= 0.0f && p->peak_threshold <= FLT_MAX && IS_FINITE(p->paf_sample_threshold) &&
          IS_FINITE(p->min_person_score) &&
          p->min_sample_fraction >= 0.0f && p->min_sample_fraction <= 1.0f &&
          p->max_limb_length >= 0.0f && p->max_limb_length <= FLT_MAX &&
          p->nms_radius >= 0 && p->nms_radius <= OPP_MAX_NMS_RADIUS &&
          p->max_peaks >= 1 && p->max_peaks <= OPP_MAX_PEAKS &&
          p->paf_samples >= 2 && p->paf_samples <= OPP_MAX_PAF_SAMPLES &&
          (p->assignment == OPP_ASSIGN_GREEDY || p->assignment == OPP_ASSIGN_OPTIMAL) &&
          p->min_parts >= 1 &&
          p->max_people >= 1 && p->max_people <= OPP_MAX_PEOPLE))
        return OPP_ERR_PARAMS;
    return OPP_OK;
}

static int check_size(int height, int width)
{
    return height >= 1 && height <= OPP_MAX_SIDE && width >= 1 && width <= OPP_MAX_SIDE
               ? OPP_OK : OPP_ERR_SIZE;
}

static int check_counts(const int *counts, int n, int max_peaks)
{
    int i;
    for (i = 0; i < n; ++i)
        if (counts[i] < 0 || counts[i] > max_peaks) return OPP_ERR_ARGUMENT;
    return OPP_OK;
}

/* ---- workspace ----------------------------------------------------------- */

/* The workspace is carved into sub-arrays, each aligned for any type, so the
 * caller's buffer may have any alignment. The same code computes the size
 * (base == NULL) and the pointers, so the two cannot disagree. */
#define WS_ALIGN 16

typedef struct carver {
    uintptr_t base, used;
} carver;

static void *carve(carver *c, size_t count, size_t size)
{
    uintptr_t at = (c->base + c->used + WS_ALIGN - 1) & ~(uintptr_t)(WS_ALIGN - 1);
    c->used = at - c->base + count * size;
    return c->base ? (void *)at : NULL;
}

static size_t carved_size(const carver *c) { return c->used + WS_ALIGN; /* slack for aligning base */ }

/* Scratch of opp_assign_limb. */
typedef struct candidate {
    float score;
    int a, b;
} candidate;

typedef struct assign_ws {
    candidate *cands;       /* greedy: every candidate pair */
    uint64_t *keys;         /* greedy: their rank_key()s */
    unsigned char *used_a, *used_b;
    int *rows, *cols;       /* optimal: peaks that have a candidate at all */
    double *u, *v, *minv;   /* Hungarian potentials */
    int *match, *way;
    unsigned char *done;
} assign_ws;

static void carve_assign(carver *c, int m, assign_ws *w)
{
    w->cands = carve(c, (size_t)m * m, sizeof(candidate));
    w->keys = carve(c, (size_t)m * m, sizeof(uint64_t));
    w->used_a = carve(c, (size_t)m, 1);
    w->used_b = carve(c, (size_t)m, 1);
    w->rows = carve(c, (size_t)m, sizeof(int));
    w->cols = carve(c, (size_t)m, sizeof(int));
    w->u = carve(c, (size_t)m + 1, sizeof(double));
    w->v = carve(c, (size_t)m + 1, sizeof(double));
    w->minv = carve(c, (size_t)m + 1, sizeof(double));
    w->match = carve(c, (size_t)m + 1, sizeof(int));
    w->way = carve(c, (size_t)m + 1, sizeof(int));
    w->done = carve(c, (size_t)m + 1, 1);
}

/* Scratch of opp_assemble. A new person always takes at least one peak nobody
 * held before, and peaks never become free again, so K * max_peaks rows suffice. */
typedef struct person {
    double sum; /* peak scores + connection scores */
    int terms;  /* how many scores are in sum */
    int parts;  /* 0 once merged into another person */
} person;

typedef struct assemble_ws {
    int *owner;     /* [K * max_peaks] person holding each peak, -1 if none */
    int *slots;     /* [rows * K] peak index per part, -1 if missing */
    person *people; /* [rows] */
    int *best;      /* [max_people] survivors, best first */
} assemble_ws;

static void carve_assemble(carver *c, int k, int m, int max_people, assemble_ws *w)
{
    size_t rows = (size_t)k * m;
    w->owner = carve(c, rows, sizeof(int));
    w->slots = carve(c, rows * k, sizeof(int));
    w->people = carve(c, rows, sizeof(person));
    w->best = carve(c, (size_t)max_people, sizeof(int));
}

/* What opp_group keeps between steps; the step scratch is carved after it. */
typedef struct group_ws {
    opp_peak *peaks;
    int *counts;
    float *scores;          /* a limb's score matrix (optimal assignment only) */
    candidate *cands;       /* a limb's candidates */
    float *t;               /* inner sample positions (see inner_samples) */
    opp_connection *connections;
    int *connection_counts;
} group_ws;

static void carve_group(carver *c, const opp_skeleton *s, const opp_params *p, group_ws *w)
{
    const int m = p->max_peaks;
    w->peaks = carve(c, (size_t)s->num_parts * m, sizeof(opp_peak));
    w->counts = carve(c, (size_t)s->num_parts, sizeof(int));
    w->scores = carve(c, (size_t)m * m, sizeof(float));
    w->cands = carve(c, (size_t)m * m, sizeof(candidate));
    w->t = carve(c, (size_t)p->paf_samples, sizeof(float));
    w->connections = carve(c, (size_t)s->num_limbs * m, sizeof(opp_connection));
    w->connection_counts = carve(c, (size_t)s->num_limbs, sizeof(int));
}

static size_t assign_ws_size(int m)
{
    carver c = {0, 0};
    assign_ws w;
    carve_assign(&c, m, &w);
    return carved_size(&c);
}

static size_t assemble_ws_size(const opp_skeleton *s, const opp_params *p)
{
    carver c = {0, 0};
    assemble_ws w;
    carve_assemble(&c, s->num_parts, p->max_peaks, p->max_people, &w);
    return carved_size(&c);
}

static size_t score_ws_size(int height, int width, const opp_params *p);

int opp_workspace_size(const opp_skeleton *skeleton, const opp_params *params, int height, int width,
                       size_t *size)
{
    int rc;
    carver c = {0, 0};
    group_ws g;
    size_t scratch, more;
    if (!size) return OPP_ERR_NULL_POINTER;
    if ((rc = check_skeleton(skeleton)) || (rc = check_params(params)) || (rc = check_size(height, width)))
        return rc;
    carve_group(&c, skeleton, params, &g);
    /* The steps run one after another, so they share the scratch after it. */
    scratch = score_ws_size(height, width, params);
    if ((more = assign_ws_size(params->max_peaks)) > scratch) scratch = more;
    if ((more = assemble_ws_size(skeleton, params)) > scratch) scratch = more;
    *size = carved_size(&c) + scratch;
    return OPP_OK;
}

/* ---- step 1: peaks ------------------------------------------------------- */

/* Vertex offset of the parabola through (-1, lo), (0, mid), (1, hi), within
 * [-0.5, 0.5]. With all three positive it fits their logs (log_mid is
 * logf(mid), taken once for both axes), which is exact for a Gaussian. mid
 * is a maximum, so a proper vertex has negative curvature. */
static float vertex_offset(float lo, float mid, float log_mid, float hi)
{
    double den, off;
    if (lo > 0.0f && mid > 0.0f && hi > 0.0f) {
        lo = logf(lo);
        mid = log_mid;
        hi = logf(hi);
    }
    den = (double)lo - 2.0 * mid + hi; /* double: plain values may be near FLT_MAX */
    if (!(den < 0.0)) return 0.0f;     /* flat */
    off = 0.5 * ((double)lo - hi) / den;
    return (float)(off < -0.5 ? -0.5 : off > 0.5 ? 0.5 : off);
}

/* Whether a cell of row[x0..x1] beats v (with ties when `ties`).
 * Non-finite cells are no evidence: they do not suppress (a NaN fails the
 * compare by itself; +Inf is checked for only when it would win). */
static int beaten(const float *row, int x0, int x1, float v, int ties)
{
    int x;
    for (x = x0; x <= x1; ++x)
        if ((row[x] > v || (ties && row[x] == v)) && row[x] <= FLT_MAX) return 1;
    return 0;
}

/* Is (x, y), of finite value v, the maximum of its window? Ties go to the
 * first cell in row-major order, so a plateau yields one peak, not many. */
static int is_window_max(const float *map, int height, int width, int x, int y, int r, float v)
{
    int y0 = y - r < 0 ? 0 : y - r, y1 = y + r >= height ? height - 1 : y + r;
    int x0 = x - r < 0 ? 0 : x - r, x1 = x + r >= width ? width - 1 : x + r;
    const float *row = map + (size_t)y * width;
    int yy;
    /* The nearest rows first: they are the likeliest to hold a bigger cell. */
    if (beaten(row, x0, x - 1, v, 1) || beaten(row, x + 1, x1, v, 0)) return 0;
    for (yy = 1; yy <= r; ++yy) {
        if (y - yy >= y0 && beaten(row - (size_t)yy * width, x0, x1, v, 1)) return 0;
        if (y + yy <= y1 && beaten(row + (size_t)yy * width, x0, x1, v, 0)) return 0;
    }
    return 1;
}

static opp_peak refine(const float *map, int height, int width, int x, int y, float v)
{
    const float *row = map + (size_t)y * width;
    const float log_v = logf(v); /* v > threshold >= 0 */
    opp_peak p;
    p.x = (float)x;
    p.y = (float)y;
    p.score = v;
    if (x > 0 && x < width - 1 && IS_FINITE(row[x - 1]) && IS_FINITE(row[x + 1]))
        p.x += vertex_offset(row[x - 1], v, log_v, row[x + 1]);
    if (y > 0 && y < height - 1 && IS_FINITE(row[x - width]) && IS_FINITE(row[x + width]))
        p.y += vertex_offset(row[x - width], v, log_v, row[x + width]);
    return p;
}

/* Inserts into a list sorted strongest first, holding at most cap peaks.
 * Returns 0 when a peak (this one or the weakest) had to be dropped. */
static int keep_peak(opp_peak *list, int *n, int cap, opp_peak pk)
{
    int i = *n, kept_all = 1;
    if (i == cap) {
        kept_all = 0;
        if (!(pk.score > list[cap - 1].score)) return 0;
        --i; /* overwrite the weakest */
    } else {
        ++*n;
    }
    for (; i > 0 && list[i - 1].score < pk.score; --i) list[i] = list[i - 1];
    list[i] = pk;
    return kept_all;
}

/* Whether a diagonal neighbour (x + dx, y + dy) of (x, y), of value v, beats
 * it under the window's rule (the row above wins ties). */
static int diagonal_beats(const float *map, int height, int width, int x, int y, float v)
{
    const float *row = map + (size_t)y * width;
    const int left = x > 0, right = x < width - 1;
    if (y > 0) {
        const float *up = row - width;
        if (left && up[x - 1] >= v && up[x - 1] <= FLT_MAX) return 1;
        if (right && up[x + 1] >= v && up[x + 1] <= FLT_MAX) return 1;
    }
    if (y < height - 1) {
        const float *down = row + width;
        if (left && down[x - 1] > v && down[x - 1] <= FLT_MAX) return 1;
        if (right && down[x + 1] > v && down[x + 1] <= FLT_MAX) return 1;
    }
    return 0;
}

/* Keeps (x, y), of value v, if it is a peak; the scan has checked its four
 * nearest neighbours, so radius 1 leaves the four diagonal ones. Kept out of
 * the scan's loop (not inlined where the compiler allows), which it would
 * slow down. */
NOINLINE static int try_peak(const float *map, int height, int width, int x, int y, float v,
                             const opp_params *p, opp_peak *list, int *n)
{
    if (!(v <= FLT_MAX)) return OPP_OK;
    if (p->nms_radius == 1 ? diagonal_beats(map, height, width, x, y, v)
                           : !is_window_max(map, height, width, x, y, p->nms_radius, v))
        return OPP_OK;
    return keep_peak(list, n, p->max_peaks, refine(map, height, width, x, y, v)) ? OPP_OK
                                                                                 : OPP_WARN_PEAKS_TRUNCATED;
}

/* Whether flat cell i, of value v > thr, is a peak: added to list (strongest
 * first, *n of them) if so. *y and *row_start say where the row of the last
 * cell looked at began, and move on (cells come in increasing order). Most
 * cells of a blob lose to one of their four nearest neighbours under the
 * window's rule, so those are checked before the whole window. *skip is set
 * when the next cell of the row loses to this one. */
static inline int test_cell(const float *map, int height, int width, size_t i, float v, int *y,
                            size_t *row_start, const opp_params *p, opp_peak *list, int *n, int *skip)
{
    const float *row;
    int x;
    while (i >= *row_start + width) {
        *row_start += width;
        ++*y;
    }
    row = map + *row_start;
    x = (int)(i - *row_start);
    *skip = 0;
    if (p->nms_radius > 0) {
        if ((x > 0 && row[x - 1] >= v && row[x - 1] <= FLT_MAX) ||
            (x < width - 1 && row[x + 1] > v && row[x + 1] <= FLT_MAX))
            return OPP_OK;
        *skip = v <= FLT_MAX && x < width - 1;
        if ((*y > 0 && row[x - width] >= v && row[x - width] <= FLT_MAX) ||
            (*y < height - 1 && row[x + width] > v && row[x + width] <= FLT_MAX))
            return OPP_OK;
    }
    return try_peak(map, height, width, x, *y, v, p, list, n);
}

/* Peaks among the flat cells [lo, hi) of map, which may span rows. */
static int scan_cells(const float *map, int height, int width, size_t lo, size_t hi,
                      int *y, size_t *row_start, const opp_params *p, opp_peak *list, int *n)
{
    const float thr = p->peak_threshold;
    size_t i;
    int status = OPP_OK, skip;
    for (i = lo; i < hi; ++i) {
        const float v = map[i];
        if (!(v > thr)) continue;
        status |= test_cell(map, height, width, i, v, y, row_start, p, list, n, &skip);
        i += skip;
    }
    return status;
}

/* Cells per block of find_peaks' pre-filter: one bit each in a uint32_t. */
#define PEAK_BLOCK 32

#if defined(__GNUC__) || defined(__clang__)
#define CTZ32(m) __builtin_ctz(m)
#else
static int CTZ32(uint32_t m)
{
    int n = 0;
    for (; !(m & 1); m >>= 1) ++n;
    return n;
}
#endif

/* The bits of cell - thr, whose sign bit is clear when cell > thr (with
 * subnormals, unequal floats never differ by 0); also when a cell equals
 * thr or is a NaN, which the exact test rejects: this is only a pre-filter.
 * Integer operations on it vectorise where a float max does not. */
static inline uint32_t excess_bits(float cell, float thr)
{
    const float d = cell - thr;
    uint32_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

/* Whether any of n cells may be above thr: some sign bit clear. */
static inline int any_above(const float *c, int n, float thr)
{
    uint32_t acc = 0xffffffffu;
    int i;
    for (i = 0; i < n; ++i) acc &= excess_bits(c[i], thr);
    return !(acc >> 31);
}

static const uint32_t block_bit[PEAK_BLOCK] = {
    1u << 0, 1u << 1, 1u << 2, 1u << 3, 1u << 4, 1u << 5, 1u << 6, 1u << 7,
    1u << 8, 1u << 9, 1u << 10, 1u << 11, 1u << 12, 1u << 13, 1u << 14, 1u << 15,
    1u << 16, 1u << 17, 1u << 18, 1u << 19, 1u << 20, 1u << 21, 1u << 22, 1u << 23,
    1u << 24, 1u << 25, 1u << 26, 1u << 27, 1u << 28, 1u << 29, 1u << 30, 1u << 31};

/* Which of the PEAK_BLOCK cells may be above thr, as bits (constant bit
 * weights, not shifts by the index: they vectorise). */
static inline uint32_t above_bits(const float *c, float thr)
{
    uint32_t bits = 0;
    int i;
    for (i = 0; i < PEAK_BLOCK; ++i) bits |= block_bit[i] & ((excess_bits(c[i], thr) >> 31) - 1u);
    return bits;
}

/* Peaks among the PEAK_BLOCK cells from flat cell i (see test_cell). */
static inline int block_peaks(const float *map, int height, int width, size_t i, int *y, size_t *row_start,
                              const opp_params *p, opp_peak *list, int *n)
{
    const float thr = p->peak_threshold;
    uint32_t bits;
    int status = OPP_OK;
    for (bits = above_bits(map + i, thr); bits; bits &= bits - 1) {
        const int b = CTZ32(bits);
        const float v = map[i + b];
        int skip;
        if (!(v > thr)) continue;
        status |= test_cell(map, height, width, i + b, v, y, row_start, p, list, n, &skip);
        if (skip) bits &= ~(2u << b); /* 0 for b = 31: the next block checks that cell */
    }
    return status;
}

SIMD_CLONES static int find_peaks(const float *heatmaps, int height, int width, int num_parts,
                      const opp_params *p, opp_peak *peaks, int *counts)
{
    const size_t plane = (size_t)height * width;
    const float thr = p->peak_threshold;
    int k, status = OPP_OK;
    for (k = 0; k < num_parts; ++k) {
        const float *map = heatmaps + k * plane;
        opp_peak *list = peaks + (size_t)k * p->max_peaks;
        size_t i, row_start = 0;
        int n = 0, y = 0;
        /* The plane is cut into flat blocks, across row ends; blocks with no
         * cell above the threshold are skipped (most are, even with 20 people
         * at 46x54: about 1 cell in 10 is above it), and in the others only
         * the cells above it are visited. */
        for (i = 0; i + 2 * PEAK_BLOCK <= plane; i += 2 * PEAK_BLOCK) {
            uint32_t a0 = 0xffffffffu, a1 = 0xffffffffu; /* two blocks: one branch when both are empty */
            int q;
            for (q = 0; q < PEAK_BLOCK; ++q) {
                a0 &= excess_bits(map[i + q], thr);
                a1 &= excess_bits(map[i + PEAK_BLOCK + q], thr);
            }
            if ((a0 & a1) >> 31) continue;
            if (!(a0 >> 31)) status |= block_peaks(map, height, width, i, &y, &row_start, p, list, &n);
            if (!(a1 >> 31)) status |= block_peaks(map, height, width, i + PEAK_BLOCK, &y, &row_start, p, list, &n);
        }
        if (i + PEAK_BLOCK <= plane) {
            if (any_above(map + i, PEAK_BLOCK, thr))
                status |= block_peaks(map, height, width, i, &y, &row_start, p, list, &n);
            i += PEAK_BLOCK;
        }
        status |= scan_cells(map, height, width, i, plane, &y, &row_start, p, list, &n);
        counts[k] = n;
    }
    return status;
}

int opp_find_peaks(const float *heatmaps, int heatmap_channels, int height, int width,
                   const opp_skeleton *skeleton, const opp_params *params,
                   opp_peak *peaks, int *counts)
{
    int rc;
    if (!heatmaps || !peaks || !counts) return OPP_ERR_NULL_POINTER;
    if ((rc = check_skeleton(skeleton)) || (rc = check_params(params)) || (rc = check_size(height, width)))
        return rc;
    if (heatmap_channels != skeleton->num_parts && heatmap_channels != skeleton->num_parts + 1)
        return OPP_ERR_CHANNELS;
    return find_peaks(heatmaps, height, width, skeleton->num_parts, params, peaks, counts);
}

/* ---- step 2: limb scores ------------------------------------------------- */

/* What every pair of one limb shares. */
typedef struct limb_field {
    const float *fx, *fy; /* the limb's x and y PAF channels */
    int width, last_x, last_y;
    float threshold;      /* paf_sample_threshold */
    float max_len;        /* distance prior */
    int samples, max_fails;
    int inner;            /* samples strictly between the two peaks: samples - 2 */
    const float *t;       /* their positions along the limb, middle first */
    const unsigned char *off; /* NULL, or where a sample surely fails (see build_off) */
    int float_cells;      /* at most 2^24 cells: indices are exact in float (see flat_cell) */
} limb_field;

/* Inner sample m of the segment from a along (dx, dy): its point and its
 * cell. Both ends are peaks inside the map, so the point is too, up to float
 * rounding, which truncation toward zero absorbs: the cell is in range. */
static inline size_t sample_point(const limb_field *f, opp_peak a, int m, float dx, float dy, float *x, float *y)
{
    *x = a.x + f->t[m] * dx;
    *y = a.y + f->t[m] * dy;
    return (size_t)(int)*y * f->width + (size_t)(int)*x;
}

/* The PAF at (x, y), bilinear; the +1 neighbours are read only inside the
 * map (on the last row or column their weight is 0). */
static inline void sample_paf(const limb_field *f, float x, float y, float *vx, float *vy)
{
    const int x0 = (int)x, y0 = (int)y;
    const float ax = x - (float)x0, ay = y - (float)y0;
    const size_t i = (size_t)y0 * f->width + x0;
    const size_t r = x0 < f->last_x, d = y0 < f->last_y ? (size_t)f->width : 0;
    const float *px = f->fx + i, *py = f->fy + i;
    *vx = (1 - ay) * ((1 - ax) * px[0] + ax * px[r]) + ay * ((1 - ax) * px[d] + ax * px[d + r]);
    *vy = (1 - ay) * ((1 - ax) * py[0] + ax * py[r]) + ay * ((1 - ax) * py[d] + ax * py[d + r]);
}

/* off[cell] = 1 when the PAF is shorter than the threshold at all four
 * corners a bilinear sample in that cell reads: such a sample cannot pass
 * (|dot(P, u)| <= |P|), so a pair is rejected by byte lookups, without its
 * square root or any interpolation. The margin keeps the test conservative
 * under rounding; NaN cells are off (a NaN corner fails the sample anyway),
 * Inf cells are not. Only the flat cells [lo, hi) are written: whole rows,
 * one more below the last looked-up row (or the map's last). The spread to
 * the corners runs in place: cell i reads only cells after it. */
SIMD_CLONES static void build_off(const limb_field *f, size_t lo, size_t hi, unsigned char *restrict off)
{
    const float c = f->threshold * f->threshold * (1.0f - 1e-4f);
    const float *restrict fx = f->fx, *restrict fy = f->fy;
    const size_t width = (size_t)f->width;
    size_t i;
    for (i = lo; i < hi; ++i) off[i] = (unsigned char)!(fx[i] * fx[i] + fy[i] * fy[i] > c);
    /* A row's last cell also takes the next row's first: that only adds support. */
    for (i = lo; i + width + 1 < hi; ++i) off[i] &= off[i + 1] & off[i + width] & off[i + width + 1];
    if (i + width < hi) { /* last column of the row above the last */
        off[i] &= off[i + 1] & off[i + width];
        ++i;
    }
    for (; i + 1 < hi; ++i) off[i] &= off[i + 1]; /* the last row (only looked up if the map's last) */
}

/* Whether more than 1/SUPPORT_FRAC of the cells of every SUPPORT_STEP-th row
 * of [y0, y1] are support: then lookups would reject too little to pay for
 * the map (a sample of the rows is enough to tell noise from limbs). */
static int mostly_support(const limb_field *f, int y0, int y1)
{
    const float c = f->threshold * f->threshold * (1.0f - 1e-4f);
    const int width = f->width;
    int y, x, cells = 0, on = 0;
    for (y = y0 + SUPPORT_STEP / 2 < y1 ? y0 + SUPPORT_STEP / 2 : y0; y <= y1; y += SUPPORT_STEP) {
        const float *fx = f->fx + (size_t)y * width, *fy = f->fy + (size_t)y * width;
        for (x = 0; x < width; ++x) on += fx[x] * fx[x] + fy[x] * fy[x] > c;
        cells += width;
    }
    return on * SUPPORT_FRAC > cells;
}

/* Line integral from a to b, or 0 if (a, b) is not a candidate. (pax, pay)
 * and (pbx, pby) are the PAF vectors at the two peaks, interpolated once per
 * peak: the first and last samples cost a dot product each. Samples are
 * compared unnormalised, dot(P, b - a) > threshold * |b - a|, to keep
 * divisions out of the loop; a non-finite sample fails and adds 0. Returns
 * as soon as too many fail: for pairs that likely do. */
SIMD_CLONES static float limb_score(const limb_field *f, opp_peak a, opp_peak b,
                        float pax, float pay, float pbx, float pby)
{
    const float dx = b.x - a.x, dy = b.y - a.y;
    const float d0 = pax * dx + pay * dy, d1 = pbx * dx + pby * dy;
    float dist, cut, sum, score, x, y, vx, vy;
    int m, fails;
    dist = sqrtf(dx * dx + dy * dy);
    if (!(dist > 1e-6f)) return 0.0f; /* coincident peaks have no direction */
    cut = f->threshold * dist;
    fails = !(d0 > cut && d0 <= FLT_MAX) + !(d1 > cut && d1 <= FLT_MAX);
    if (fails > f->max_fails) return 0.0f;
    sum = (IS_FINITE(d0) ? d0 : 0.0f) + (IS_FINITE(d1) ? d1 : 0.0f);
    for (m = 0; m < f->inner; ++m) {
        float d;
        (void)sample_point(f, a, m, dx, dy, &x, &y);
        sample_paf(f, x, y, &vx, &vy);
        d = vx * dx + vy * dy;
        if (d > cut && d <= FLT_MAX) {
            sum += d;
        } else {
            if (++fails > f->max_fails) return 0.0f;
            sum += IS_FINITE(d) ? d : 0.0f;
        }
    }
    score = sum / ((float)f->samples * dist);
    if (dist > f->max_len) score += f->max_len / dist - 1.0f;
    return score > 0.0f && score <= FLT_MAX ? score : 0.0f;
}

/* The PAF vector at each of n peaks. */
static void paf_at_peaks(const limb_field *f, const opp_peak *peaks, int n, float *vx, float *vy)
{
    int i;
    for (i = 0; i < n; ++i) sample_paf(f, peaks[i].x, peaks[i].y, &vx[i], &vy[i]);
}

/* Inner samples whose lookups score_row makes for every pair, branch-free. */
#define HEAD_SAMPLES 3

/* Scratch of opp_score_limb. */
typedef struct score_ws {
    float *t;                     /* inner sample positions (opp_score_limb's) */
    float *pax, *pay, *pbx, *pby; /* PAF at each peak of the limb's two parts */
    float *bx, *by;               /* part B's peaks, as plain arrays (they vectorise) */
    int *fails;                   /* per B peak: samples known to fail */
    int *cells;                   /* [HEAD_SAMPLES][max_peaks + 3]: cells of the first inner samples */
    int *keep;                    /* B peaks not rejected by that */
    unsigned char *off;           /* off-support map (see build_off) */
    candidate *cands;             /* opp_score_limb's candidates, before the matrix */
} score_ws;

static void carve_score(carver *c, int height, int width, const opp_params *p, score_ws *w)
{
    const size_t m = (size_t)p->max_peaks, m4 = m + 3; /* B's arrays: padded to a multiple of 4 */
    w->t = carve(c, (size_t)p->paf_samples, sizeof(float));
    w->pax = carve(c, m, sizeof(float));
    w->pay = carve(c, m, sizeof(float));
    w->pbx = carve(c, m4, sizeof(float));
    w->pby = carve(c, m4, sizeof(float));
    w->bx = carve(c, m4, sizeof(float));
    w->by = carve(c, m4, sizeof(float));
    w->fails = carve(c, m4, sizeof(int));
    w->cells = carve(c, m4 * HEAD_SAMPLES, sizeof(int));
    w->keep = carve(c, m, sizeof(int));
    w->off = carve(c, (size_t)height * width, 1);
    w->cands = carve(c, m * m, sizeof(candidate));
}

/* The flat index of the cell of (x, y), truncated as sample_point does. Row
 * times width is taken in float when the map has at most 2^24 cells (exact
 * there): baseline x86-64 (SSE2) has no 4-wide 32-bit integer multiply, and
 * emulating one costs more than the conversions. */
static inline int flat_cell(float x, float y, int width, float fwidth, int in_float)
{
    return in_float ? (int)((float)(int)y * fwidth) + (int)x : (int)y * width + (int)x;
}

/* score_row's pass over 4 * n4 peaks of part B (restrict parameters: it
 * vectorises without run-time alias checks). Inlined with in_float a
 * constant, so each of score_row's two calls is one branch-free loop. */
static inline void head_cells(int n4, float xa, float ya, float pax, float pay, const float *restrict t,
                              const float *restrict bx, const float *restrict by,
                              const float *restrict pbx, const float *restrict pby, int width,
                              int in_float, int *restrict fails, int *restrict c0, int *restrict c1,
                              int *restrict c2)
{
    const float t0 = t[0], t1 = t[1], t2 = t[2], fwidth = (float)width;
    const size_t n = (size_t)n4 * 4;
    size_t j;
    for (j = 0; j < n; ++j) {
        const float dx = bx[j] - xa, dy = by[j] - ya;
        fails[j] = !(pax * dx + pay * dy > 0.0f) + !(pbx[j] * dx + pby[j] * dy > 0.0f);
        c0[j] = flat_cell(xa + t0 * dx, ya + t0 * dy, width, fwidth, in_float);
        c1[j] = flat_cell(xa + t1 * dx, ya + t1 * dy, width, fwidth, in_float);
        c2[j] = flat_cell(xa + t2 * dx, ya + t2 * dy, width, fwidth, in_float);
    }
}

/* Candidates of peak a (index ia, PAF (pax, pay)) with every peak of part B,
 * appended to out; returns how many. A pass over B that vectorises (B's
 * arrays are padded to a multiple of 4) counts the ends that point backwards
 * (dot <= 0: they fail, as the threshold is positive whenever there is a map)
 * and finds the cells of the first HEAD_SAMPLES inner samples, from the same
 * float expressions as sample_point; a branch-free pass adds up their
 * lookups and keeps the pairs not yet rejected (few: most wrong pairs fail
 * these), which go on to the other lookups and the exact score. */
SIMD_CLONES static int score_row(const limb_field *f, const score_ws *w, int ia, opp_peak a, float pax, float pay,
                     const opp_peak *b, int nb, int stride, candidate *out)
{
    const unsigned char *off = f->off;
    const float *bx = w->bx, *by = w->by, *pbx = w->pbx, *pby = w->pby;
    int *fails = w->fails, *keep = w->keep;
    const int *c0 = w->cells, *c1 = c0 + stride, *c2 = c1 + stride;
    const int width = f->width, max_fails = f->max_fails;
    int j, q, nk = 0, n = 0;
    if (f->float_cells)
        head_cells((nb + 3) / 4, a.x, a.y, pax, pay, f->t, bx, by, pbx, pby, width, 1, fails, w->cells,
                   w->cells + stride, w->cells + 2 * stride);
    else
        head_cells((nb + 3) / 4, a.x, a.y, pax, pay, f->t, bx, by, pbx, pby, width, 0, fails, w->cells,
                   w->cells + stride, w->cells + 2 * stride);
    for (j = 0; j < nb; ++j) {
        const int k = fails[j] + off[c0[j]] + off[c1[j]] + off[c2[j]];
        fails[j] = k;
        keep[nk] = j;
        nk += k <= max_fails;
    }
    for (q = 0; q < nk; ++q) {
        const int jb = keep[q];
        const float dx = bx[jb] - a.x, dy = by[jb] - a.y;
        int k = fails[jb], m;
        float s;
        for (m = HEAD_SAMPLES; k <= max_fails && m < f->inner; ++m) {
            const float x = a.x + f->t[m] * dx, y = a.y + f->t[m] * dy;
            k += off[(size_t)(int)y * width + (size_t)(int)x];
        }
        if (k > max_fails) continue;
        s = limb_score(f, a, b[jb], pax, pay, pbx[jb], pby[jb]);
        if (s > 0.0f) {
            out[n].score = s;
            out[n].a = ia;
            out[n].b = jb;
            ++n;
        }
    }
    return n;
}

/* Positions of the n - 2 inner samples along a limb, middle first, then
 * outwards (mid, mid + 1, mid - 1, ...): the middle of a wrong pair is the
 * likeliest to lie off any limb. */
static void inner_samples(int n, float *t)
{
    int k;
    for (k = 0; k < n - 2; ++k) {
        int at = (n - 1) / 2 + (k & 1 ? (k + 1) / 2 : -(k / 2));
        t[k] = (float)at / (float)(n - 1);
    }
}

/* Every candidate pair of a limb (score > 0), in order of (a, b); returns how
 * many were written to out. */
static int score_limb(const float *pafs, int height, int width, const opp_skeleton *s,
                      const opp_params *p, int limb, const opp_peak *peaks, const int *counts,
                      const float *t, candidate *out, void *workspace)
{
    const size_t plane = (size_t)height * width;
    const int m = p->max_peaks, n = p->paf_samples;
    const int pa = s->limb_parts[2 * limb], pb = s->limb_parts[2 * limb + 1];
    const int na = counts[pa], nb = counts[pb];
    const opp_peak *a = peaks + (size_t)pa * m, *b = peaks + (size_t)pb * m;
    /* Fewest passing samples that meet the fraction; the epsilon absorbs float
     * rounding (0.8f * 1000 is 800.00001, which needs 800, not 801). */
    const int need = (int)ceil((double)p->min_sample_fraction * n - 1e-3);
    carver c;
    score_ws w;
    limb_field f;
    int i, j, found = 0;
    if (!na || !nb) return 0;
    c.base = (uintptr_t)workspace;
    c.used = 0;
    carve_score(&c, height, width, p, &w);
    f.fx = pafs + s->limb_pafs[2 * limb] * plane;
    f.fy = pafs + s->limb_pafs[2 * limb + 1] * plane;
    f.width = width;
    f.last_x = width - 1;
    f.last_y = height - 1;
    f.threshold = p->paf_sample_threshold;
    f.max_len = p->max_limb_length > 0.0f ? p->max_limb_length : 0.5f * (float)height;
    f.samples = n;
    f.inner = n - 2;
    f.max_fails = n - need;
    f.t = t;
    f.off = NULL;
    f.float_cells = plane <= (size_t)1 << 24;
    paf_at_peaks(&f, a, na, w.pax, w.pay);
    paf_at_peaks(&f, b, nb, w.pbx, w.pby);
    /* The map costs a few passes over the rows that the two parts' peaks span
     * (lookups go no further, give or take a row of rounding) and saves a few
     * interpolations per pair: worth it for many pairs, and only if little is
     * support (noise above the threshold everywhere leaves nothing to reject).
     * It can prove a rejection only if max_fails < inner samples and the
     * threshold is positive (with a margin above float underflow). */
    if (f.max_fails < f.inner && f.inner >= HEAD_SAMPLES && f.threshold >= 1e-6f) {
        float lo_y = a[0].y, hi_y = a[0].y;
        int y0, y1;
        for (i = 1; i < na; ++i) {
            lo_y = a[i].y < lo_y ? a[i].y : lo_y;
            hi_y = a[i].y > hi_y ? a[i].y : hi_y;
        }
        for (j = 0; j < nb; ++j) {
            lo_y = b[j].y < lo_y ? b[j].y : lo_y;
            hi_y = b[j].y > hi_y ? b[j].y : hi_y;
        }
        y0 = (int)lo_y - 1 < 0 ? 0 : (int)lo_y - 1;
        y1 = (int)hi_y + 1 > height - 1 ? height - 1 : (int)hi_y + 1;
        if ((double)na * nb * (f.max_fails + 1) * SUPPORT_PAYOFF >= (double)(y1 - y0 + 1) * width &&
            !mostly_support(&f, y0, y1)) {
            const size_t lo = (size_t)y0 * width, hi = y1 + 2 < height ? (size_t)(y1 + 2) * width : plane;
            build_off(&f, lo, hi, w.off);
            f.off = w.off;
            for (j = 0; j < nb; ++j) {
                w.bx[j] = b[j].x;
                w.by[j] = b[j].y;
            }
            for (; j < ((nb + 3) & ~3); ++j) { /* padding: a copy of the last, never looked up */
                w.bx[j] = w.bx[nb - 1];
                w.by[j] = w.by[nb - 1];
                w.pbx[j] = w.pbx[nb - 1];
                w.pby[j] = w.pby[nb - 1];
            }
            for (i = 0; i < na; ++i)
                found += score_row(&f, &w, i, a[i], w.pax[i], w.pay[i], b, nb, m + 3, out + found);
            return found;
        }
    }
    for (i = 0; i < na; ++i)
        for (j = 0; j < nb; ++j) {
            const float sc = limb_score(&f, a[i], b[j], w.pax[i], w.pay[i], w.pbx[j], w.pby[j]);
            if (sc > 0.0f) {
                out[found].score = sc;
                out[found].a = i;
                out[found].b = j;
                ++found;
            }
        }
    return found;
}

/* Peaks handed in by a caller must lie inside the map: the sampler relies on it. */
static int check_peaks(const opp_peak *peaks, const int *counts, int num_parts, int max_peaks,
                       int height, int width)
{
    int k, i;
    for (k = 0; k < num_parts; ++k)
        for (i = 0; i < counts[k]; ++i) {
            const opp_peak *q = &peaks[(size_t)k * max_peaks + i];
            if (!(q->x >= 0.0f && q->x <= (float)(width - 1) && q->y >= 0.0f && q->y <= (float)(height - 1)))
                return OPP_ERR_ARGUMENT;
        }
    return OPP_OK;
}

static size_t score_ws_size(int height, int width, const opp_params *p)
{
    carver c = {0, 0};
    score_ws w;
    carve_score(&c, height, width, p, &w);
    return carved_size(&c);
}

/* Candidates -> the na x nb corner of a score matrix (row stride `stride`). */
static void scatter_scores(const candidate *cands, int n, int na, int nb, float *scores, int stride)
{
    int i, j;
    for (i = 0; i < na; ++i)
        for (j = 0; j < nb; ++j) scores[(size_t)i * stride + j] = 0.0f;
    for (i = 0; i < n; ++i) scores[(size_t)cands[i].a * stride + cands[i].b] = cands[i].score;
}

int opp_score_limb(const float *pafs, int paf_channels, int height, int width,
                   const opp_skeleton *skeleton, const opp_params *params, int limb,
                   const opp_peak *peaks, const int *counts, float *scores,
                   void *workspace, size_t workspace_size)
{
    int rc, n;
    carver c;
    score_ws w;
    if (!pafs || !peaks || !counts || !scores || !workspace) return OPP_ERR_NULL_POINTER;
    if ((rc = check_skeleton(skeleton)) || (rc = check_params(params)) || (rc = check_size(height, width)))
        return rc;
    if (paf_channels != 2 * skeleton->num_limbs) return OPP_ERR_CHANNELS;
    if (limb < 0 || limb >= skeleton->num_limbs) return OPP_ERR_ARGUMENT;
    if (workspace_size < score_ws_size(height, width, params)) return OPP_ERR_WORKSPACE;
    if ((rc = check_counts(counts, skeleton->num_parts, params->max_peaks)) ||
        (rc = check_peaks(peaks, counts, skeleton->num_parts, params->max_peaks, height, width)))
        return rc;
    c.base = (uintptr_t)workspace;
    c.used = 0;
    carve_score(&c, height, width, params, &w);
    inner_samples(params->paf_samples, w.t);
    n = score_limb(pafs, height, width, skeleton, params, limb, peaks, counts, w.t, w.cands, workspace);
    scatter_scores(w.cands, n, counts[skeleton->limb_parts[2 * limb]], counts[skeleton->limb_parts[2 * limb + 1]],
                   scores, params->max_peaks);
    return OPP_OK;
}

/* ---- step 3: assignment -------------------------------------------------- */

/* Greedy or optimal? On synthetic scenes (random_scene at 46x54, sigma and limb
 * width 1 map px; 100 scenes each of 1, 5, 10 and 20 people, clean and with
 * smooth noise) both recover 100 % of the people, with at most 1.01 people
 * returned per true person. With figures placed anywhere, over each other and
 * the border, both recover 80-91 % and differ by at most 0.1 %; of 340 scenes
 * of two overlapping figures, optimal got one ankle right that greedy lost.
 * Optimal costs 7 % (1 person) to 25 % (20 people) more instructions (greedy
 * takes score_limb's candidates as they are; optimal needs them as a matrix),
 * so greedy is the default. */

/* The greedy pass takes candidates in a strict order: higher score first,
 * then lower indices, so equal scores resolve the same way on every
 * platform. A candidate's key sorts in that order, descending, as one
 * integer: the score's bits (scores are > 0, whose bits order as the
 * floats do), then the complements of a and b (both < 2^16). */
static uint64_t rank_key(const candidate *c)
{
    uint32_t bits;
    memcpy(&bits, &c->score, sizeof bits);
    return (uint64_t)bits << 32 | (uint64_t)(0xffffu - (uint32_t)c->a) << 16 | (0xffffu - (uint32_t)c->b);
}

/* Heapsort, descending (no allocation, O(n log n) even for a flood of candidates). */
static void sift_down(uint64_t *k, int root, int n)
{
    for (;;) {
        int child = 2 * root + 1;
        uint64_t t;
        if (child >= n) return;
        if (child + 1 < n && k[child + 1] < k[child]) ++child;
        if (!(k[child] < k[root])) return;
        t = k[root];
        k[root] = k[child];
        k[child] = t;
        root = child;
    }
}

static void sort_keys(uint64_t *k, int n)
{
    int i;
    if (n <= 32) { /* a limb's usual few (about one per person): insertion is cheaper */
        for (i = 1; i < n; ++i) {
            const uint64_t t = k[i];
            int j = i;
            for (; j > 0 && k[j - 1] < t; --j) k[j] = k[j - 1];
            k[j] = t;
        }
        return;
    }
    /* min-heap on the keys, then each minimum to the end: descending */
    for (i = n / 2 - 1; i >= 0; --i) sift_down(k, i, n);
    for (i = n - 1; i > 0; --i) {
        uint64_t t = k[0];
        k[0] = k[i];
        k[i] = t;
        sift_down(k, 0, i);
    }
}

/* Greedy matching of n candidates. */
static int greedy_from(const candidate *cands, int n, int na, int nb, opp_connection *out, const assign_ws *w)
{
    int i, j, k = 0;
    for (i = 0; i < n; ++i) w->keys[i] = rank_key(&cands[i]);
    sort_keys(w->keys, n);
    for (i = 0; i < na; ++i) w->used_a[i] = 0;
    for (j = 0; j < nb; ++j) w->used_b[j] = 0;
    for (i = 0; i < n; ++i) {
        const uint64_t key = w->keys[i];
        const int a = 0xffff - (int)(key >> 16 & 0xffff), b = 0xffff - (int)(key & 0xffff);
        const uint32_t bits = (uint32_t)(key >> 32);
        if (w->used_a[a] || w->used_b[b]) continue;
        w->used_a[a] = w->used_b[b] = 1;
        out[k].a = a;
        out[k].b = b;
        memcpy(&out[k].score, &bits, sizeof bits);
        ++k;
    }
    return k;
}

static int assign_greedy(const float *scores, int stride, int na, int nb, opp_connection *out,
                         const assign_ws *w)
{
    int i, j, n = 0;
    for (i = 0; i < na; ++i)
        for (j = 0; j < nb; ++j) {
            float s = scores[(size_t)i * stride + j];
            if (s > 0.0f) {
                w->cands[n].score = s;
                w->cands[n].a = i;
                w->cands[n].b = j;
                ++n;
            }
        }
    return greedy_from(w->cands, n, na, nb, out, w);
}

/* Maximum-weight matching as a min-cost assignment with cost = -score, where
 * a non-candidate costs 0 (= staying unmatched); every candidate scores > 0.
 * Only peaks with a candidate take part. Hungarian algorithm with potentials,
 * O(rows^2 * cols), rows <= cols (1-based arrays; column 0 is a sentinel). */
static int assign_optimal(const float *scores, int stride, int na, int nb, opp_connection *out,
                          const assign_ws *w)
{
    int i, j, nr = 0, nc = 0, k = 0, transpose;
    for (i = 0; i < na; ++i) w->used_a[i] = 0;
    for (j = 0; j < nb; ++j) w->used_b[j] = 0;
    for (i = 0; i < na; ++i)
        for (j = 0; j < nb; ++j)
            if (scores[(size_t)i * stride + j] > 0.0f) w->used_a[i] = w->used_b[j] = 1;
    for (i = 0; i < na; ++i) if (w->used_a[i]) w->rows[nr++] = i;
    for (j = 0; j < nb; ++j) if (w->used_b[j]) w->cols[nc++] = j;
    transpose = nr > nc;
    {
        const int *rmap = transpose ? w->cols : w->rows, *cmap = transpose ? w->rows : w->cols;
        const int n = transpose ? nc : nr, mcols = transpose ? nr : nc;
        double *u = w->u, *v = w->v, *minv = w->minv;
        int *match = w->match, *way = w->way; /* match[col] = row, 0 = free */
#define COST(r, c) (-(double)(transpose ? scores[(size_t)cmap[(c) - 1] * stride + rmap[(r) - 1]] \
                                        : scores[(size_t)rmap[(r) - 1] * stride + cmap[(c) - 1]]))
        for (j = 0; j <= mcols; ++j) {
            v[j] = 0.0;
            match[j] = 0;
        }
        for (i = 0; i <= n; ++i) u[i] = 0.0;
        for (i = 1; i <= n; ++i) {
            int j0 = 0;
            match[0] = i;
            for (j = 0; j <= mcols; ++j) {
                minv[j] = HUGE_VAL;
                w->done[j] = 0;
            }
            do { /* grow alternating paths until a free column is reached */
                int i0 = match[j0], j1 = 0;
                double delta = HUGE_VAL;
                w->done[j0] = 1;
                for (j = 1; j <= mcols; ++j) {
                    if (w->done[j]) continue;
                    {
                        double cur = COST(i0, j) - u[i0] - v[j];
                        if (cur < minv[j]) {
                            minv[j] = cur;
                            way[j] = j0;
                        }
                        if (minv[j] < delta) {
                            delta = minv[j];
                            j1 = j;
                        }
                    }
                }
                for (j = 0; j <= mcols; ++j) {
                    if (w->done[j]) {
                        u[match[j]] += delta;
                        v[j] -= delta;
                    } else {
                        minv[j] -= delta;
                    }
                }
                j0 = j1;
            } while (match[j0] != 0);
            do { /* flip the path */
                int j1 = way[j0];
                match[j0] = match[j1];
                j0 = j1;
            } while (j0);
        }
#undef COST
        for (j = 1; j <= mcols; ++j) {
            int r, c;
            float s;
            if (!match[j]) continue;
            r = rmap[match[j] - 1];
            c = cmap[j - 1];
            if (transpose) {
                int t = r;
                r = c;
                c = t;
            }
            s = scores[(size_t)r * stride + c];
            if (s > 0.0f) { /* a zero-cost pairing means "unmatched" */
                out[k].a = r;
                out[k].b = c;
                out[k].score = s;
                ++k;
            }
        }
    }
    return k;
}

static int assign_limb(const opp_params *p, const float *scores, int na, int nb,
                       opp_connection *out, void *workspace)
{
    carver c;
    assign_ws w;
    c.base = (uintptr_t)workspace;
    c.used = 0;
    carve_assign(&c, p->max_peaks, &w);
    return p->assignment == OPP_ASSIGN_OPTIMAL ? assign_optimal(scores, p->max_peaks, na, nb, out, &w)
                                               : assign_greedy(scores, p->max_peaks, na, nb, out, &w);
}

/* opp_group's step 3, from score_limb's candidates: greedy takes them as they
 * are; optimal needs them as a matrix (`scores`). */
static int assign_cands(const opp_params *p, candidate *cands, int n, int na, int nb, float *scores,
                        opp_connection *out, void *workspace)
{
    carver c;
    assign_ws w;
    if (p->assignment == OPP_ASSIGN_OPTIMAL) {
        scatter_scores(cands, n, na, nb, scores, p->max_peaks);
        return assign_limb(p, scores, na, nb, out, workspace);
    }
    c.base = (uintptr_t)workspace;
    c.used = 0;
    carve_assign(&c, p->max_peaks, &w);
    return greedy_from(cands, n, na, nb, out, &w);
}

int opp_assign_limb(const opp_params *params, const float *scores, int count_a, int count_b,
                    opp_connection *connections, int *num_connections,
                    void *workspace, size_t workspace_size)
{
    int rc;
    if (!scores || !connections || !num_connections || !workspace) return OPP_ERR_NULL_POINTER;
    if ((rc = check_params(params))) return rc;
    if (count_a < 0 || count_a > params->max_peaks || count_b < 0 || count_b > params->max_peaks)
        return OPP_ERR_ARGUMENT;
    if (workspace_size < assign_ws_size(params->max_peaks)) return OPP_ERR_WORKSPACE;
    *num_connections = assign_limb(params, scores, count_a, count_b, connections, workspace);
    return OPP_OK;
}

/* ---- step 4: assembly ---------------------------------------------------- */

static void take_peak(const assemble_ws *w, int k, int m, int row, int part, int peak, float score)
{
    w->slots[(size_t)row * k + part] = peak;
    w->owner[(size_t)part * m + peak] = row;
    w->people[row].sum += score;
    w->people[row].terms += 1;
    w->people[row].parts += 1;
}

static int new_person(const assemble_ws *w, int k, int *rows)
{
    int row = (*rows)++, i;
    for (i = 0; i < k; ++i) w->slots[(size_t)row * k + i] = -1;
    w->people[row].sum = 0.0;
    w->people[row].terms = 0;
    w->people[row].parts = 0;
    return row;
}

/* Moves person `from` into `into` if no part is in both; returns whether it did. */
static int merge(const assemble_ws *w, int k, int m, int into, int from)
{
    int *a = w->slots + (size_t)into * k, *b = w->slots + (size_t)from * k, i;
    for (i = 0; i < k; ++i)
        if (a[i] >= 0 && b[i] >= 0) return 0;
    for (i = 0; i < k; ++i)
        if (b[i] >= 0) {
            a[i] = b[i];
            w->owner[(size_t)i * m + b[i]] = into;
        }
    w->people[into].sum += w->people[from].sum;
    w->people[into].terms += w->people[from].terms;
    w->people[into].parts += w->people[from].parts;
    w->people[from].parts = 0; /* dead: never output */
    return 1;
}

static void connect(const assemble_ws *w, const opp_peak *peaks, int k, int m, int *rows,
                    int part_a, int part_b, const opp_connection *c)
{
    const float sa = peaks[(size_t)part_a * m + c->a].score, sb = peaks[(size_t)part_b * m + c->b].score;
    int ra = w->owner[(size_t)part_a * m + c->a], rb = w->owner[(size_t)part_b * m + c->b];
    if (ra < 0 && rb < 0) {
        ra = new_person(w, k, rows);
        take_peak(w, k, m, ra, part_a, c->a, sa);
        take_peak(w, k, m, ra, part_b, c->b, sb);
    } else if (rb < 0) {
        if (w->slots[(size_t)ra * k + part_b] >= 0) return; /* already has that part */
        take_peak(w, k, m, ra, part_b, c->b, sb);
    } else if (ra < 0) {
        if (w->slots[(size_t)rb * k + part_a] >= 0) return;
        take_peak(w, k, m, rb, part_a, c->a, sa);
        ra = rb;
    } else if (ra != rb && !merge(w, k, m, ra, rb)) {
        return; /* two people that both have some part: keep them apart */
    }
    /* The connection itself is evidence too (also for a redundant limb whose
     * ends are already in the same person). */
    w->people[ra].sum += c->score;
    w->people[ra].terms += 1;
}

static double person_score(const person *q) { return q->sum / q->terms; }

static int assemble(const opp_skeleton *s, const opp_params *p, const opp_peak *peaks,
                    const int *counts, const opp_connection *connections,
                    const int *connection_counts, void *workspace,
                    float *keypoints, float *person_scores, int *num_people)
{
    const int k = s->num_parts, m = p->max_peaks;
    int rows = 0, kept = 0, status = OPP_OK, l, i, r;
    carver c;
    assemble_ws w;
    c.base = (uintptr_t)workspace;
    c.used = 0;
    carve_assemble(&c, k, m, p->max_people, &w);
    for (i = 0; i < k * m; ++i) w.owner[i] = -1;

    for (l = 0; l < s->num_limbs; ++l)
        for (i = 0; i < connection_counts[l]; ++i)
            connect(&w, peaks, k, m, &rows, s->limb_parts[2 * l], s->limb_parts[2 * l + 1],
                    &connections[(size_t)l * m + i]);
    if (p->min_parts <= 1) /* lone parts are people too */
        for (l = 0; l < k; ++l)
            for (i = 0; i < counts[l]; ++i)
                if (w.owner[(size_t)l * m + i] < 0)
                    take_peak(&w, k, m, new_person(&w, k, &rows), l, i, peaks[(size_t)l * m + i].score);

    /* Keep the best max_people survivors, best first (insertion: few people). */
    for (r = 0; r < rows; ++r) {
        const person *q = &w.people[r];
        double score;
        int at;
        if (q->parts < p->min_parts || !(person_score(q) >= p->min_person_score)) continue;
        score = person_score(q);
        at = kept;
        if (kept == p->max_people) {
            status |= OPP_WARN_PEOPLE_TRUNCATED;
            if (!(score > person_score(&w.people[w.best[kept - 1]]))) continue;
            --at;
        } else {
            ++kept;
        }
        for (; at > 0 && person_score(&w.people[w.best[at - 1]]) < score; --at) w.best[at] = w.best[at - 1];
        w.best[at] = r;
    }

    for (r = 0; r < kept; ++r) {
        const int *slot = w.slots + (size_t)w.best[r] * k;
        float *out = keypoints + (size_t)r * k * 3;
        for (i = 0; i < k; ++i, out += 3) {
            if (slot[i] >= 0) {
                const opp_peak *pk = &peaks[(size_t)i * m + slot[i]];
                out[0] = pk->x;
                out[1] = pk->y;
                out[2] = pk->score;
            } else {
                out[0] = out[1] = out[2] = 0.0f;
            }
        }
        person_scores[r] = (float)person_score(&w.people[w.best[r]]);
    }
    *num_people = kept;
    return status;
}

int opp_assemble(const opp_skeleton *skeleton, const opp_params *params,
                 const opp_peak *peaks, const int *counts,
                 const opp_connection *connections, const int *connection_counts,
                 void *workspace, size_t workspace_size,
                 float *keypoints, float *person_scores, int *num_people)
{
    int rc, l, i;
    if (!peaks || !counts || !workspace || !keypoints || !person_scores || !num_people)
        return OPP_ERR_NULL_POINTER;
    if ((rc = check_skeleton(skeleton)) || (rc = check_params(params))) return rc;
    if (skeleton->num_limbs > 0 && (!connections || !connection_counts)) return OPP_ERR_NULL_POINTER;
    if (workspace_size < assemble_ws_size(skeleton, params)) return OPP_ERR_WORKSPACE;
    if ((rc = check_counts(counts, skeleton->num_parts, params->max_peaks))) return rc;
    /* Connections index peak lists: a bad index would write far away. */
    for (l = 0; l < skeleton->num_limbs; ++l) {
        const int na = counts[skeleton->limb_parts[2 * l]], nb = counts[skeleton->limb_parts[2 * l + 1]];
        const opp_connection *c = connections + (size_t)l * params->max_peaks;
        if (connection_counts[l] < 0 || connection_counts[l] > params->max_peaks) return OPP_ERR_ARGUMENT;
        for (i = 0; i < connection_counts[l]; ++i)
            if (c[i].a < 0 || c[i].a >= na || c[i].b < 0 || c[i].b >= nb || !IS_FINITE(c[i].score))
                return OPP_ERR_ARGUMENT;
    }
    return assemble(skeleton, params, peaks, counts, connections, connection_counts, workspace,
                    keypoints, person_scores, num_people);
}

/* ---- all steps ----------------------------------------------------------- */

int opp_group(const float *heatmaps, int heatmap_channels,
              const float *pafs, int paf_channels, int height, int width,
              const opp_skeleton *skeleton, const opp_params *params,
              void *workspace, size_t workspace_size,
              float *keypoints, float *person_scores, int *num_people)
{
    size_t need;
    int rc, status, l;
    carver c;
    group_ws g;
    void *scratch;
    if (!heatmaps || !workspace || !keypoints || !person_scores || !num_people) return OPP_ERR_NULL_POINTER;
    if ((rc = opp_workspace_size(skeleton, params, height, width, &need))) return rc;
    if (skeleton->num_limbs > 0 && !pafs) return OPP_ERR_NULL_POINTER;
    if ((heatmap_channels != skeleton->num_parts && heatmap_channels != skeleton->num_parts + 1) ||
        paf_channels != 2 * skeleton->num_limbs)
        return OPP_ERR_CHANNELS;
    if (workspace_size < need) return OPP_ERR_WORKSPACE;

    c.base = (uintptr_t)workspace;
    c.used = 0;
    carve_group(&c, skeleton, params, &g);
    scratch = carve(&c, 0, 1); /* the rest serves each step in turn */

    status = find_peaks(heatmaps, height, width, skeleton->num_parts, params, g.peaks, g.counts);
    inner_samples(params->paf_samples, g.t);
    for (l = 0; l < skeleton->num_limbs; ++l) {
        const int na = g.counts[skeleton->limb_parts[2 * l]], nb = g.counts[skeleton->limb_parts[2 * l + 1]];
        const int n = score_limb(pafs, height, width, skeleton, params, l, g.peaks, g.counts, g.t, g.cands,
                                 scratch);
        g.connection_counts[l] = assign_cands(params, g.cands, n, na, nb, g.scores,
                                              g.connections + (size_t)l * params->max_peaks, scratch);
    }
    return status | assemble(skeleton, params, g.peaks, g.counts, g.connections, g.connection_counts,
                             scratch, keypoints, person_scores, num_people);
}
