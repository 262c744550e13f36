/*
 * paf_assembly.c - step 4: people from the connections of every limb
 * (opp_assemble), then the best max_people of them, best first.
 *
 * Limbs are taken in skeleton order: a connection starts a person, gives a
 * person a part, or joins two people when they are one (no part in both, or
 * only parts seen twice: see merge). Then fragments that no connection
 * joined are merged the same way, and people are scored by their evidence.
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
    w->people[row].absorbed = 0;
    return row;
}

/* Whether two peaks of one part are one part seen twice: within the merge
 * radius (r2 = its square; a radius of 0 never merges). */
static int same_part(const opp_peak *p, const opp_peak *q, float r2)
{
    const float dx = p->x - q->x, dy = p->y - q->y;
    return r2 > 0.0f && dx * dx + dy * dy <= r2;
}

/* Moves person `from` into `into` if they are one person: every part both
 * hold is one part seen twice (same_part), which a peak found twice ~ a few
 * cells apart leaves behind, each copy taking some of the limbs. Such a part
 * keeps its stronger peak; the other stays owned by the person (it is no
 * evidence of anyone else) but leaves its score. Returns whether it merged. */
static int merge(const assemble_ws *w, const opp_peak *peaks, int k, int m, float r2, int into, int from)
{
    int *a = w->slots + (size_t)into * k, *b = w->slots + (size_t)from * k, i, shared = 0;
    person *q = &w->people[into];
    for (i = 0; i < k; ++i)
        if (a[i] >= 0 && b[i] >= 0 && !same_part(&peaks[(size_t)i * m + a[i]], &peaks[(size_t)i * m + b[i]], r2))
            return 0;
    for (i = 0; i < k; ++i) {
        if (b[i] < 0) continue;
        w->owner[(size_t)i * m + b[i]] = into;
        if (a[i] < 0) {
            a[i] = b[i];
            continue;
        }
        { /* one part seen twice */
            const float sa = peaks[(size_t)i * m + a[i]].score, sb = peaks[(size_t)i * m + b[i]].score;
            if (sb > sa) a[i] = b[i];
            q->sum -= sb > sa ? sa : sb;
            q->terms -= 1;
            q->parts -= 1;
            ++shared;
        }
    }
    if (w->people[from].absorbed) /* peaks it absorbed before: no owner may name a merged person */
        for (i = 0; i < k * m; ++i)
            if (w->owner[i] == from) w->owner[i] = into;
    q->absorbed += w->people[from].absorbed + shared;
    q->sum += w->people[from].sum;
    q->terms += w->people[from].terms;
    q->parts += w->people[from].parts;
    w->people[from].parts = 0; /* dead: never output */
    return 1;
}

static void connect(const assemble_ws *w, const opp_peak *peaks, int k, int m, float r2, int *rows,
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
    } else if (ra != rb && !merge(w, peaks, k, m, r2, ra, rb)) {
        return; /* two people: keep them apart */
    }
    /* The connection itself is evidence too (also for a redundant limb whose
     * ends are already in the same person). */
    w->people[ra].sum += c->score;
    w->people[ra].terms += 1;
}

/* Fragments no connection joined: people holding two peaks of one part
 * within the merge radius are merged if they are one person (see merge).
 * Such pairs are rare (the same part of two people is mostly further apart),
 * so a pass that vectorises over the part's positions looks for one first. */
SIMD_CLONES static void merge_fragments(const assemble_ws *w, const opp_peak *peaks, const int *counts, int k,
                                        int m, float r2)
{
    float *restrict px = w->px, *restrict py = w->py;
    int part, i, j;
    for (part = 0; part < k; ++part) {
        const opp_peak *list = peaks + (size_t)part * m;
        const int *owner = w->owner + (size_t)part * m;
        const int n = counts[part];
        for (i = 0; i < n; ++i) {
            px[i] = list[i].x;
            py[i] = list[i].y;
        }
        for (i = 0; i + 1 < n; ++i) {
            const float xi = px[i], yi = py[i];
            int near = 0;
            for (j = i + 1; j < n; ++j) {
                const float dx = xi - px[j], dy = yi - py[j];
                near |= dx * dx + dy * dy <= r2;
            }
            if (!near) continue;
            for (j = i + 1; j < n; ++j)
                if (owner[i] >= 0 && owner[j] >= 0 && owner[i] != owner[j] && same_part(&list[i], &list[j], r2))
                    merge(w, peaks, k, m, r2, owner[i], owner[j]);
        }
    }
}

/* OPP_SCORE_EVIDENCE: the person's summed evidence (peak and connection
 * scores) over the most a person of this skeleton can hold, K + L: a whole
 * person outranks a confident fragment. OPP_SCORE_MEAN: its mean. */
static double person_score(const person *q, int mode, double most)
{
    return mode == OPP_SCORE_MEAN ? q->sum / q->terms : q->sum / most;
}

int oppi_assemble(const opp_skeleton *s, const opp_params *p, const opp_peak *peaks,
                  const int *counts, const opp_connection *connections,
                  const int *connection_counts, void *workspace,
                  float *keypoints, float *person_scores, int *num_people)
{
    const int k = s->num_parts, m = p->max_peaks;
    const float r2 = p->merge_radius * p->merge_radius;
    const double most = (double)k + s->num_limbs;
    int rows = 0, kept = 0, status = OPP_OK, l, i, r;
    carver c = carver_at(workspace);
    assemble_ws w;
    oppi_carve_assemble(&c, k, m, p->max_people, &w);
    for (i = 0; i < k * m; ++i) w.owner[i] = -1;

    for (l = 0; l < s->num_limbs; ++l)
        for (i = 0; i < connection_counts[l]; ++i)
            connect(&w, peaks, k, m, r2, &rows, s->limb_parts[2 * l], s->limb_parts[2 * l + 1],
                    &connections[(size_t)l * m + i]);
    if (r2 > 0.0f) merge_fragments(&w, peaks, counts, k, m, r2);
    if (p->min_parts <= 1) /* lone parts are people too */
        for (l = 0; l < k; ++l)
            for (i = 0; i < counts[l]; ++i)
                if (w.owner[(size_t)l * m + i] < 0)
                    take_peak(&w, k, m, new_person(&w, k, &rows), l, i, peaks[(size_t)l * m + i].score);

    /* Keep the best max_people survivors, best first (insertion: few people). */
    for (r = 0; r < rows; ++r) {
        person *q = &w.people[r];
        int at;
        if (q->parts < p->min_parts) continue;
        q->score = person_score(q, p->person_score, most);
        if (!(q->score >= p->min_person_score)) continue;
        at = kept;
        if (kept == p->max_people) {
            status |= OPP_WARN_PEOPLE_TRUNCATED;
            if (!(q->score > w.people[w.best[kept - 1]].score)) continue;
            --at;
        } else {
            ++kept;
        }
        for (; at > 0 && w.people[w.best[at - 1]].score < q->score; --at) w.best[at] = w.best[at - 1];
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
        { /* evidence near FLT_MAX (absurd maps) summed over more terms than K + L may not fit a float */
            const double score = w.people[w.best[r]].score;
            person_scores[r] = score < FLT_MAX ? (float)score : FLT_MAX;
        }
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
