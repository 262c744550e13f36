/*
 * paf.c - the front of the grouping core declared in openpose_plus_paf.h:
 * version, messages, defaults, the argument checks every step shares, and
 * opp_group, which runs the steps (paf_peaks.c, paf_limb_scores.c,
 * paf_assignment.c, paf_assembly.c) on one workspace (paf_workspace.c).
 */
#include "paf_internal.h"

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
    p->peak_threshold = 0.05f;
    p->nms_radius = 1;
    p->max_peaks = 64;
    p->paf_samples = 10;
    p->paf_sample_threshold = 0.05f;
    p->min_sample_fraction = 0.8f;
    p->max_limb_length = 0.0f;
    p->assignment = OPP_ASSIGN_GREEDY;
    p->min_parts = 4;
    p->min_person_score = 0.05f;
    p->max_people = 64;
    p->person_score = OPP_SCORE_EVIDENCE;
    p->peak_weight = 0.5f;
    p->merge_radius = 3.0f;
}

/* ---- argument checks ----------------------------------------------------- */

int oppi_check_skeleton(const opp_skeleton *s)
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

int oppi_check_params(const opp_params *p)
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
          p->max_people >= 1 && p->max_people <= OPP_MAX_PEOPLE &&
          (p->person_score == OPP_SCORE_EVIDENCE || p->person_score == OPP_SCORE_MEAN) &&
          p->peak_weight >= 0.0f && p->peak_weight <= 1.0f &&
          p->merge_radius >= 0.0f && p->merge_radius <= FLT_MAX))
        return OPP_ERR_PARAMS;
    return OPP_OK;
}

int oppi_check_size(int height, int width)
{
    return height >= 1 && height <= OPP_MAX_SIDE && width >= 1 && width <= OPP_MAX_SIDE
               ? OPP_OK : OPP_ERR_SIZE;
}

int oppi_check_counts(const int *counts, int n, int max_peaks)
{
    int i;
    for (i = 0; i < n; ++i)
        if (counts[i] < 0 || counts[i] > max_peaks) return OPP_ERR_ARGUMENT;
    return OPP_OK;
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
    carver c, cs, ca;
    group_ws g;
    score_ws sw;
    assign_ws aw;
    void *scratch;
    if (!heatmaps || !workspace || !keypoints || !person_scores || !num_people) return OPP_ERR_NULL_POINTER;
    if ((rc = opp_workspace_size(skeleton, params, height, width, &need))) return rc;
    if (skeleton->num_limbs > 0 && !pafs) return OPP_ERR_NULL_POINTER;
    if ((heatmap_channels != skeleton->num_parts && heatmap_channels != skeleton->num_parts + 1) ||
        paf_channels != 2 * skeleton->num_limbs)
        return OPP_ERR_CHANNELS;
    if (workspace_size < need) return OPP_ERR_WORKSPACE;

    c = carver_at(workspace);
    oppi_carve_group(&c, skeleton, params, &g);
    scratch = carve(&c, 0, 1); /* the rest serves each step in turn: limb scores and assignment
                                * take turns per limb, carved once */
    cs = carver_at(scratch);
    oppi_carve_score(&cs, height, width, params, &sw);
    ca = carver_at(scratch);
    oppi_carve_assign(&ca, params->max_peaks, &aw);

    status = oppi_find_peaks(heatmaps, height, width, skeleton->num_parts, params, g.peaks, g.counts);
    oppi_inner_samples(params->paf_samples, g.t);
    for (l = 0; l < skeleton->num_limbs; ++l) {
        const int na = g.counts[skeleton->limb_parts[2 * l]], nb = g.counts[skeleton->limb_parts[2 * l + 1]];
        const int n = oppi_score_limb(pafs, height, width, skeleton, params, l, g.peaks, g.counts, g.t,
                                      g.cands, &sw);
        g.connection_counts[l] = oppi_assign_candidates(params, g.cands, n, na, nb, g.scores,
                                                        g.connections + (size_t)l * params->max_peaks, &aw);
    }
    return status | oppi_assemble(skeleton, params, g.peaks, g.counts, g.connections, g.connection_counts,
                                  scratch, keypoints, person_scores, num_people);
}
