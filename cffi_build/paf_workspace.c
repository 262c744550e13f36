/*
 * paf_workspace.c - how the caller's one workspace is carved: the layout of
 * every step's scratch (declared in paf_internal.h) and opp_workspace_size.
 * The same carve_* code computes the sizes (a carver at 0) and the pointers.
 */
#include "paf_internal.h"

void oppi_carve_score(carver *c, int height, int width, const opp_params *p, score_ws *w)
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

void oppi_carve_assign(carver *c, int m, assign_ws *w)
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

void oppi_carve_assemble(carver *c, int k, int m, int max_people, assemble_ws *w)
{
    size_t rows = (size_t)k * m;
    w->owner = carve(c, rows, sizeof(int));
    w->slots = carve(c, rows * k, sizeof(int));
    w->people = carve(c, rows, sizeof(person));
    w->best = carve(c, (size_t)max_people, sizeof(int));
    w->px = carve(c, (size_t)m, sizeof(float));
    w->py = carve(c, (size_t)m, sizeof(float));
}

void oppi_carve_group(carver *c, const opp_skeleton *s, const opp_params *p, group_ws *w)
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

size_t oppi_score_ws_size(int height, int width, const opp_params *p)
{
    carver c = {0, 0};
    score_ws w;
    oppi_carve_score(&c, height, width, p, &w);
    return carved_size(&c);
}

size_t oppi_assign_ws_size(int m)
{
    carver c = {0, 0};
    assign_ws w;
    oppi_carve_assign(&c, m, &w);
    return carved_size(&c);
}

size_t oppi_assemble_ws_size(const opp_skeleton *s, const opp_params *p)
{
    carver c = {0, 0};
    assemble_ws w;
    oppi_carve_assemble(&c, s->num_parts, p->max_peaks, p->max_people, &w);
    return carved_size(&c);
}

int opp_workspace_size(const opp_skeleton *skeleton, const opp_params *params, int height, int width,
                       size_t *size)
{
    int rc;
    carver c = {0, 0};
    group_ws g;
    size_t scratch, more;
    if (!size) return OPP_ERR_NULL_POINTER;
    if ((rc = oppi_check_skeleton(skeleton)) || (rc = oppi_check_params(params)) ||
        (rc = oppi_check_size(height, width)))
        return rc;
    oppi_carve_group(&c, skeleton, params, &g);
    /* The steps run one after another, so they share the scratch after it. */
    scratch = oppi_score_ws_size(height, width, params);
    if ((more = oppi_assign_ws_size(params->max_peaks)) > scratch) scratch = more;
    if ((more = oppi_assemble_ws_size(skeleton, params)) > scratch) scratch = more;
    *size = carved_size(&c) + scratch;
    return OPP_OK;
}
