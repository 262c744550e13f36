/*
 * paf_peaks.c - step 1: the peaks of each part's heatmap (opp_find_peaks).
 *
 * The idea (first in this file): a peak is a finite cell above peak_threshold
 * that is the maximum of its (2r+1)^2 window, ties going to the first cell in
 * row-major order (a plateau yields one peak); its position is refined by a
 * parabola through the log of its neighbours; each part keeps its max_peaks
 * strongest, strongest first. scan_plane_plain does exactly that, cell by cell.
 *
 * The fast path (second): most of a heatmap is below the threshold, and most
 * cells of a blob lose to a nearest neighbour. scan_plane skips blocks of 32
 * cells with none above the threshold (integer tests that vectorise), checks
 * the four nearest neighbours before the window, and skips the cell after one
 * that beats it. It visits the same cells in the same order and applies the
 * same rule, so it finds the same peaks bit for bit (tests/test_plain_loops.py
 * builds both: -DOPP_PLAIN_LOOPS).
 */
#include "paf_internal.h"

#include <math.h>
#include <string.h>

/* ---- the idea ------------------------------------------------------------ */

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

/* The peak at cell (x, y), of value v, refined along x and y where both
 * neighbours are finite. */
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
 * first cell in row-major order: cells before it win them, cells after lose. */
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

#ifdef OPP_PLAIN_LOOPS
/* Every cell of one part's heatmap, by the definition. */
static int scan_plane_plain(const float *map, int height, int width, const opp_params *p,
                            opp_peak *list, int *n)
{
    const float thr = p->peak_threshold;
    int x, y, status = OPP_OK;
    for (y = 0; y < height; ++y)
        for (x = 0; x < width; ++x) {
            const float v = map[(size_t)y * width + x];
            if (!(v > thr && v <= FLT_MAX) || !is_window_max(map, height, width, x, y, p->nms_radius, v))
                continue;
            if (!keep_peak(list, n, p->max_peaks, refine(map, height, width, x, y, v)))
                status = OPP_WARN_PEAKS_TRUNCATED;
        }
    return status;
}
#else

/* ---- the fast path ------------------------------------------------------- */

/* Whether a diagonal neighbour of (x, y), of value v, beats it under the
 * window's rule (the row above wins ties). */
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

/* Cells per block of the pre-filter: one bit each in a uint32_t. */
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

/* One part's heatmap, cut into flat blocks across row ends: blocks with no
 * cell above the threshold are skipped (most are, even in a crowd), and in
 * the others only the cells above it are visited. */
SIMD_CLONES static int scan_plane(const float *map, int height, int width, const opp_params *p,
                                  opp_peak *list, int *n)
{
    const size_t plane = (size_t)height * width;
    const float thr = p->peak_threshold;
    size_t i, row_start = 0;
    int y = 0, status = OPP_OK;
    for (i = 0; i + 2 * PEAK_BLOCK <= plane; i += 2 * PEAK_BLOCK) {
        uint32_t a0 = 0xffffffffu, a1 = 0xffffffffu; /* two blocks: one branch when both are empty */
        int q;
        for (q = 0; q < PEAK_BLOCK; ++q) {
            a0 &= excess_bits(map[i + q], thr);
            a1 &= excess_bits(map[i + PEAK_BLOCK + q], thr);
        }
        if ((a0 & a1) >> 31) continue;
        if (!(a0 >> 31)) status |= block_peaks(map, height, width, i, &y, &row_start, p, list, n);
        if (!(a1 >> 31)) status |= block_peaks(map, height, width, i + PEAK_BLOCK, &y, &row_start, p, list, n);
    }
    if (i + PEAK_BLOCK <= plane) {
        if (any_above(map + i, PEAK_BLOCK, thr))
            status |= block_peaks(map, height, width, i, &y, &row_start, p, list, n);
        i += PEAK_BLOCK;
    }
    return status | scan_cells(map, height, width, i, plane, &y, &row_start, p, list, n);
}
#endif /* OPP_PLAIN_LOOPS */

/* ---- the step ------------------------------------------------------------ */

int oppi_find_peaks(const float *heatmaps, int height, int width, int num_parts,
                    const opp_params *p, opp_peak *peaks, int *counts)
{
    const size_t plane = (size_t)height * width;
    int k, status = OPP_OK;
    for (k = 0; k < num_parts; ++k) {
        int n = 0;
#ifdef OPP_PLAIN_LOOPS
        status |= scan_plane_plain(heatmaps + k * plane, height, width, p, peaks + (size_t)k * p->max_peaks, &n);
#else
        status |= scan_plane(heatmaps + k * plane, height, width, p, peaks + (size_t)k * p->max_peaks, &n);
#endif
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
    if ((rc = oppi_check_skeleton(skeleton)) || (rc = oppi_check_params(params)) ||
        (rc = oppi_check_size(height, width)))
        return rc;
    if (heatmap_channels != skeleton->num_parts && heatmap_channels != skeleton->num_parts + 1)
        return OPP_ERR_CHANNELS;
    return oppi_find_peaks(heatmaps, height, width, skeleton->num_parts, params, peaks, counts);
}
