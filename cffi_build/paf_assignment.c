/*
 * paf_assignment.c - step 3: each limb's candidates matched one to one
 * (opp_assign_limb), each peak used at most once.
 *
 * Greedy (the default, as OpenPose): best-scored candidate first. Optimal:
 * the maximum total score (Hungarian algorithm). On synthetic scenes both
 * recover the same people; greedy takes the candidates as step 2 lists them,
 * optimal needs them as a matrix and costs more (the README has the numbers).
 */
#include "paf_internal.h"

#include <math.h>
#include <string.h>

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
 * O(rows^2 * cols), rows <= cols (1-based arrays; column 0 is a sentinel). Shared
 * with the tracker (track.c), which matches people to tracks with it. */
int oppi_assign_optimal(const float *scores, int stride, int na, int nb, opp_connection *out,
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
                       opp_connection *out, const assign_ws *w)
{
    return p->assignment == OPP_ASSIGN_OPTIMAL ? oppi_assign_optimal(scores, p->max_peaks, na, nb, out, w)
                                               : assign_greedy(scores, p->max_peaks, na, nb, out, w);
}

/* opp_group's step 3, from step 2's candidates: greedy takes them as they
 * are; optimal needs them as a matrix (`scores`). */
int oppi_assign_candidates(const opp_params *p, candidate *cands, int n, int na, int nb, float *scores,
                           opp_connection *out, const assign_ws *w)
{
    if (p->assignment == OPP_ASSIGN_OPTIMAL) {
        oppi_scatter_scores(cands, n, na, nb, scores, p->max_peaks);
        return assign_limb(p, scores, na, nb, out, w);
    }
    return greedy_from(cands, n, na, nb, out, w);
}

int opp_assign_limb(const opp_params *params, const float *scores, int count_a, int count_b,
                    opp_connection *connections, int *num_connections,
                    void *workspace, size_t workspace_size)
{
    int rc;
    carver c;
    assign_ws w;
    if (!scores || !connections || !num_connections || !workspace) return OPP_ERR_NULL_POINTER;
    if ((rc = oppi_check_params(params))) return rc;
    if (count_a < 0 || count_a > params->max_peaks || count_b < 0 || count_b > params->max_peaks)
        return OPP_ERR_ARGUMENT;
    if (workspace_size < oppi_assign_ws_size(params->max_peaks)) return OPP_ERR_WORKSPACE;
    c = carver_at(workspace);
    oppi_carve_assign(&c, params->max_peaks, &w);
    *num_connections = assign_limb(params, scores, count_a, count_b, connections, &w);
    return OPP_OK;
}
