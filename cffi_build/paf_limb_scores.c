/*
 * paf_limb_scores.c - step 2: the score of every candidate pair of a limb
 * (opp_score_limb).
 *
 * The idea (first in this file): a pair, peak a of the limb's first part and
 * peak b of its second, is scored by walking the segment a -> b through the
 * limb's PAF. At paf_samples evenly spaced points, both ends included, the
 * PAF (bilinear) is projected on the segment's direction; a projection above
 * paf_sample_threshold counts as support. The score is the mean projection
 * plus the distance prior min(0, max_len / |b - a| - 1); the pair is a
 * candidate if at least min_sample_fraction of the samples are support and
 * the score is positive. A candidate's score is then weighed by its weaker
 * end's peak score, to the power peak_weight: of two candidates the PAF
 * supports alike (a limb, and a piece of it ending on a weak peak that lies
 * on the limb), the one between confident parts scores higher, and two
 * pieces do not outweigh the limb (which a matching maximising the total
 * would otherwise prefer). score_pairs_plain scores every pair so.
 *
 * The fast path (second): most pairs of a crowded frame are wrong, and the
 * middle of a wrong pair lies off every limb. An off-support map marks the
 * cells where no sample can be support; score_pairs_fast rejects most pairs
 * by a few byte lookups in it, before any interpolation, and scores the rest
 * as the plain loop does. It rejects only pairs that fail anyway, so it finds
 * the plain loop's candidates bit for bit (tests/test_plain_loops.py builds
 * both: -DOPP_PLAIN_LOOPS).
 */
#include "paf_internal.h"

#include <math.h>

/* ---- the idea ------------------------------------------------------------ */

/* What every pair of one limb shares. */
typedef struct limb_field {
    const float *fx, *fy; /* the limb's x and y PAF channels */
    int width, last_x, last_y;
    float threshold;      /* paf_sample_threshold */
    float max_len;        /* distance prior */
    float peak_weight;    /* exponent of the weaker end's peak score */
    int samples, max_fails;
    int inner;            /* samples strictly between the two peaks: samples - 2 */
    const float *t;       /* their positions along the limb, middle first */
} limb_field;

/* Positions of the n - 2 inner samples along a limb, middle first, then
 * outwards (mid, mid + 1, mid - 1, ...): the middle of a wrong pair is the
 * likeliest to lie off any limb, so a pair that fails fails early. */
void oppi_inner_samples(int n, float *t)
{
    int k;
    for (k = 0; k < n - 2; ++k) {
        int at = (n - 1) / 2 + (k & 1 ? (k + 1) / 2 : -(k / 2));
        t[k] = (float)at / (float)(n - 1);
    }
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

/* The PAF vector at each of n peaks: a pair's end samples, taken once per peak. */
static void paf_at_peaks(const limb_field *f, const opp_peak *peaks, int n, float *vx, float *vy)
{
    int i;
    for (i = 0; i < n; ++i) sample_paf(f, peaks[i].x, peaks[i].y, &vx[i], &vy[i]);
}

/* weak^w, for a peak score clamped to [0, 1] (a caller's NaN peak weighs
 * nothing: 1). sqrtf for the default w = 0.5: exact, so the same on every
 * platform and build, and cheaper than powf. */
static inline float peak_factor(float weak, float w)
{
    if (!(weak < 1.0f) || w == 0.0f) return 1.0f;
    if (!(weak > 0.0f)) return 0.0f;
    return w == 0.5f ? sqrtf(weak) : w == 1.0f ? weak : powf(weak, w);
}

/* The score of pair (a, b), or 0 if it is not a candidate. (pax, pay) and
 * (pbx, pby) are the PAF at the two peaks: the end samples. Projections are
 * compared unnormalised, dot(P, b - a) > threshold * |b - a|, which keeps
 * divisions out of the loop; a non-finite sample fails and adds 0. Returns
 * as soon as too many samples fail: they will not come back. Inner sample
 * points are inside the map: both ends are peaks inside it (float rounding
 * is absorbed by truncating toward zero). */
SIMD_CLONES static float limb_score(const limb_field *f, opp_peak a, opp_peak b,
                                    float pax, float pay, float pbx, float pby)
{
    const float dx = b.x - a.x, dy = b.y - a.y;
    const float d0 = pax * dx + pay * dy, d1 = pbx * dx + pby * dy;
    float dist, cut, sum, score, vx, vy;
    int m, fails;
    dist = sqrtf(dx * dx + dy * dy);
    if (!(dist > 1e-6f)) return 0.0f; /* coincident peaks have no direction */
    cut = f->threshold * dist;
    fails = !(d0 > cut && d0 <= FLT_MAX) + !(d1 > cut && d1 <= FLT_MAX);
    if (fails > f->max_fails) return 0.0f;
    sum = (IS_FINITE(d0) ? d0 : 0.0f) + (IS_FINITE(d1) ? d1 : 0.0f);
    for (m = 0; m < f->inner; ++m) {
        float d;
        sample_paf(f, a.x + f->t[m] * dx, a.y + f->t[m] * dy, &vx, &vy);
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
    if (!(score > 0.0f && score <= FLT_MAX)) return 0.0f;
    return score * peak_factor(a.score < b.score ? a.score : b.score, f->peak_weight);
}

/* Appends the pair (a, b) to out[n] if it scored; the new count. Both paths
 * keep candidates through here, so they agree on what a candidate is. */
static inline int keep_if_scored(candidate *out, int n, float score, int a, int b)
{
    if (!(score > 0.0f)) return n;
    out[n].score = score;
    out[n].a = a;
    out[n].b = b;
    return n + 1;
}

/* Every pair, scored in full; candidates appended to out in order of (a, b). */
static int score_pairs_plain(const limb_field *f, const score_ws *w, const opp_peak *a, int na,
                             const opp_peak *b, int nb, candidate *out)
{
    int i, j, found = 0;
    for (i = 0; i < na; ++i)
        for (j = 0; j < nb; ++j)
            found = keep_if_scored(out, found, limb_score(f, a[i], b[j], w->pax[i], w->pay[i], w->pbx[j], w->pby[j]),
                                   i, j);
    return found;
}

#ifndef OPP_PLAIN_LOOPS
/* ---- the fast path: rejecting pairs by lookups ---------------------------- */

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
/* A cell is off-support when |PAF|^2 <= threshold^2 * OFF_MARGIN at all four
 * corners: the margin below 1 keeps the test conservative under rounding (a
 * value above 1 breaks it, which tests/test_plain_loops.py checks it sees). */
#ifndef OFF_MARGIN
#define OFF_MARGIN (1.0f - 1e-4f)
#endif

/* off[cell] = 1 when the PAF is shorter than the threshold at all four
 * corners a bilinear sample in that cell reads: such a sample cannot pass
 * (|dot(P, u)| <= |P|), so a pair is rejected by byte lookups, without its
 * square root or any interpolation. NaN cells are off (a NaN corner fails
 * the sample anyway), Inf cells are not. Only the flat cells [lo, hi) are
 * written: whole rows, one more below the last looked-up row (or the map's
 * last). The spread to the corners runs in place: cell i reads only cells
 * after it. */
SIMD_CLONES static void build_off(const limb_field *f, size_t lo, size_t hi, unsigned char *restrict off)
{
    const float c = f->threshold * f->threshold * OFF_MARGIN;
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
    const float c = f->threshold * f->threshold * OFF_MARGIN;
    const int width = f->width;
    int y, x, cells = 0, on = 0;
    for (y = y0 + SUPPORT_STEP / 2 < y1 ? y0 + SUPPORT_STEP / 2 : y0; y <= y1; y += SUPPORT_STEP) {
        const float *fx = f->fx + (size_t)y * width, *fy = f->fy + (size_t)y * width;
        for (x = 0; x < width; ++x) on += fx[x] * fx[x] + fy[x] * fy[x] > c;
        cells += width;
    }
    return on * SUPPORT_FRAC > cells;
}

/* The flat index of the cell of (x, y), truncated as sample_paf does. Row
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
 * float expressions as limb_score; a branch-free pass adds up their lookups
 * and keeps the pairs not yet rejected (few: most wrong pairs fail these),
 * which go on to the other lookups and the exact score. */
SIMD_CLONES static int score_row(const limb_field *f, const score_ws *w, const unsigned char *off, int in_float,
                                 int ia, opp_peak a, float pax, float pay, const opp_peak *b, int nb,
                                 int stride, candidate *out)
{
    const float *bx = w->bx, *by = w->by, *pbx = w->pbx, *pby = w->pby;
    int *fails = w->fails, *keep = w->keep;
    const int *c0 = w->cells, *c1 = c0 + stride, *c2 = c1 + stride;
    const int width = f->width, max_fails = f->max_fails;
    int j, q, nk = 0, n = 0;
    if (in_float)
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
        for (m = HEAD_SAMPLES; k <= max_fails && m < f->inner; ++m) {
            const float x = a.x + f->t[m] * dx, y = a.y + f->t[m] * dy;
            k += off[(size_t)(int)y * width + (size_t)(int)x];
        }
        if (k > max_fails) continue;
        n = keep_if_scored(out, n, limb_score(f, a, b[jb], pax, pay, pbx[jb], pby[jb]), ia, jb);
    }
    return n;
}

/* Whether the off-support map pays for this limb, and the rows [*y0, *y1]
 * it must cover (those the two parts' peaks span: lookups go no further,
 * give or take a row of rounding). It costs a few passes over those rows and
 * saves a few interpolations per pair: worth it for many pairs, and only if
 * little is support (noise above the threshold everywhere leaves nothing to
 * reject). It can prove a rejection only if max_fails < inner samples and the
 * threshold is positive (with a margin above float underflow). */
static int off_support_pays(const limb_field *f, const opp_peak *a, int na, const opp_peak *b, int nb,
                            int height, int *y0, int *y1)
{
    float lo_y = a[0].y, hi_y = a[0].y;
    int i;
    if (!(f->max_fails < f->inner && f->inner >= HEAD_SAMPLES && f->threshold >= 1e-6f)) return 0;
    for (i = 1; i < na; ++i) {
        lo_y = a[i].y < lo_y ? a[i].y : lo_y;
        hi_y = a[i].y > hi_y ? a[i].y : hi_y;
    }
    for (i = 0; i < nb; ++i) {
        lo_y = b[i].y < lo_y ? b[i].y : lo_y;
        hi_y = b[i].y > hi_y ? b[i].y : hi_y;
    }
    *y0 = (int)lo_y - 1 < 0 ? 0 : (int)lo_y - 1;
    *y1 = (int)hi_y + 1 > height - 1 ? height - 1 : (int)hi_y + 1;
    return (double)na * nb * (f->max_fails + 1) * SUPPORT_PAYOFF >= (double)(*y1 - *y0 + 1) * f->width &&
           !mostly_support(f, *y0, *y1);
}

/* score_pairs_plain's candidates, by way of the off-support map of rows [y0, y1]. */
static int score_pairs_fast(const limb_field *f, const score_ws *w, const opp_peak *a, int na,
                            const opp_peak *b, int nb, int height, int y0, int y1, int m, candidate *out)
{
    const size_t plane = (size_t)height * f->width;
    const size_t lo = (size_t)y0 * f->width, hi = y1 + 2 < height ? (size_t)(y1 + 2) * f->width : plane;
    const int in_float = plane <= (size_t)1 << 24; /* indices exact in float (see flat_cell) */
    int i, j, found = 0;
    build_off(f, lo, hi, w->off);
    for (j = 0; j < nb; ++j) {
        w->bx[j] = b[j].x;
        w->by[j] = b[j].y;
    }
    for (; j < ((nb + 3) & ~3); ++j) { /* padding: a copy of the last, never looked up */
        w->bx[j] = w->bx[nb - 1];
        w->by[j] = w->by[nb - 1];
        w->pbx[j] = w->pbx[nb - 1];
        w->pby[j] = w->pby[nb - 1];
    }
    for (i = 0; i < na; ++i)
        found += score_row(f, w, w->off, in_float, i, a[i], w->pax[i], w->pay[i], b, nb, m + 3, out + found);
    return found;
}
#endif /* !OPP_PLAIN_LOOPS */

/* ---- the step ------------------------------------------------------------ */

int oppi_score_limb(const float *pafs, int height, int width, const opp_skeleton *s,
                    const opp_params *p, int limb, const opp_peak *peaks, const int *counts,
                    const float *t, candidate *out, const score_ws *w)
{
    const size_t plane = (size_t)height * width;
    const int m = p->max_peaks, n = p->paf_samples;
    const int pa = s->limb_parts[2 * limb], pb = s->limb_parts[2 * limb + 1];
    const int na = counts[pa], nb = counts[pb];
    const opp_peak *a = peaks + (size_t)pa * m, *b = peaks + (size_t)pb * m;
    /* Fewest passing samples that meet the fraction; the epsilon absorbs float
     * rounding (0.8f * 1000 is 800.00001, which needs 800, not 801). */
    const int need = (int)ceil((double)p->min_sample_fraction * n - 1e-3);
    limb_field f;
    if (!na || !nb) return 0;
    f.fx = pafs + s->limb_pafs[2 * limb] * plane;
    f.fy = pafs + s->limb_pafs[2 * limb + 1] * plane;
    f.width = width;
    f.last_x = width - 1;
    f.last_y = height - 1;
    f.threshold = p->paf_sample_threshold;
    f.max_len = p->max_limb_length > 0.0f ? p->max_limb_length : 0.5f * (float)height;
    f.peak_weight = p->peak_weight;
    f.samples = n;
    f.inner = n - 2;
    f.max_fails = n - need;
    f.t = t;
    paf_at_peaks(&f, a, na, w->pax, w->pay);
    paf_at_peaks(&f, b, nb, w->pbx, w->pby);
#ifndef OPP_PLAIN_LOOPS
    {
        int y0, y1;
        if (off_support_pays(&f, a, na, b, nb, height, &y0, &y1))
            return score_pairs_fast(&f, w, a, na, b, nb, height, y0, y1, m, out);
    }
#endif
    return score_pairs_plain(&f, w, a, na, b, nb, out);
}

void oppi_scatter_scores(const candidate *cands, int n, int na, int nb, float *scores, int stride)
{
    int i, j;
    for (i = 0; i < na; ++i)
        for (j = 0; j < nb; ++j) scores[(size_t)i * stride + j] = 0.0f;
    for (i = 0; i < n; ++i) scores[(size_t)cands[i].a * stride + cands[i].b] = cands[i].score;
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

int opp_score_limb(const float *pafs, int paf_channels, int height, int width,
                   const opp_skeleton *skeleton, const opp_params *params, int limb,
                   const opp_peak *peaks, const int *counts, float *scores,
                   void *workspace, size_t workspace_size)
{
    int rc, n;
    carver c;
    score_ws w;
    if (!pafs || !peaks || !counts || !scores || !workspace) return OPP_ERR_NULL_POINTER;
    if ((rc = oppi_check_skeleton(skeleton)) || (rc = oppi_check_params(params)) ||
        (rc = oppi_check_size(height, width)))
        return rc;
    if (paf_channels != 2 * skeleton->num_limbs) return OPP_ERR_CHANNELS;
    if (limb < 0 || limb >= skeleton->num_limbs) return OPP_ERR_ARGUMENT;
    if (workspace_size < oppi_score_ws_size(height, width, params)) return OPP_ERR_WORKSPACE;
    if ((rc = oppi_check_counts(counts, skeleton->num_parts, params->max_peaks)) ||
        (rc = check_peaks(peaks, counts, skeleton->num_parts, params->max_peaks, height, width)))
        return rc;
    c = carver_at(workspace);
    oppi_carve_score(&c, height, width, params, &w);
    oppi_inner_samples(params->paf_samples, w.t);
    n = oppi_score_limb(pafs, height, width, skeleton, params, limb, peaks, counts, w.t, w.cands, &w);
    oppi_scatter_scores(w.cands, n, counts[skeleton->limb_parts[2 * limb]],
                        counts[skeleton->limb_parts[2 * limb + 1]], scores, params->max_peaks);
    return OPP_OK;
}
