/*
 * paf_assembly.c - step 4: people from the connections of every limb
 * (opp_assemble), then the best max_people of them, best first.
 */
#include "paf_internal.h"

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

int oppi_assemble(const opp_skeleton *s, const opp_params *p, const opp_peak *peaks,
                  const int *counts, const opp_connection *connections,
                  const int *connection_counts, void *workspace,
                  float *keypoints, float *person_scores, int *num_people)
{
    const int k = s->num_parts, m = p->max_peaks;
    int rows = 0, kept = 0, status = OPP_OK, l, i, r;
    carver c = carver_at(workspace);
    assemble_ws w;
    oppi_carve_assemble(&c, k, m, p->max_people, &w);
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
    if ((rc = oppi_check_skeleton(skeleton)) || (rc = oppi_check_params(params))) return rc;
    if (skeleton->num_limbs > 0 && (!connections || !connection_counts)) return OPP_ERR_NULL_POINTER;
    if (workspace_size < oppi_assemble_ws_size(skeleton, params)) return OPP_ERR_WORKSPACE;
    if ((rc = oppi_check_counts(counts, skeleton->num_parts, params->max_peaks))) return rc;
    /* Connections index peak lists: a bad index would write far away. */
    for (l = 0; l < skeleton->num_limbs; ++l) {
        const int na = counts[skeleton->limb_parts[2 * l]], nb = counts[skeleton->limb_parts[2 * l + 1]];
        const opp_connection *c = connections + (size_t)l * params->max_peaks;
        if (connection_counts[l] < 0 || connection_counts[l] > params->max_peaks) return OPP_ERR_ARGUMENT;
        for (i = 0; i < connection_counts[l]; ++i)
            if (c[i].a < 0 || c[i].a >= na || c[i].b < 0 || c[i].b >= nb || !IS_FINITE(c[i].score))
                return OPP_ERR_ARGUMENT;
    }
    return oppi_assemble(skeleton, params, peaks, counts, connections, connection_counts, workspace,
                         keypoints, person_scores, num_people);
}
