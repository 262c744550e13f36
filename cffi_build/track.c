/*
 * track.c - person IDs across frames and One Euro smoothing of their keypoints
 * (the API and the method are described in openpose_plus_paf.h, "Tracking").
 *
 * The state is one caller-owned block: a header, then max_tracks track records,
 * then max_tracks * num_parts part records, then per-frame scratch (people,
 * predictions, candidate pairs). Offsets are computed from the header on every
 * call and nothing in the block is a pointer, so the block can be copied.
 *
 * Robustness: every float that comes in is checked (a non-finite or far-out part is
 * missing), time steps used for rates are at least MIN_DT, and a velocity or a
 * filter state that is not finite is reset, so no input makes a NaN come out of a
 * tracked person, and a float is converted to an integer only once it is known to be
 * in range (a pixel's coordinates).
 */
#include "paf_internal.h" /* the optimal assignment (paf_assignment.c) */

#include <math.h>
#include <stdint.h>
#include <string.h>

#define TRACK_MAGIC 0x6f707074u /* "oppt" */
#define MAX_COORD 1e6f          /* parts beyond +-MAX_COORD are missing */
#define MIN_DT 1e-3             /* s: a shorter step is taken as this long for rates (no camera is faster) */
#define OUTLIER 3.0f           /* a part this many kappa * size from where its track expected it is not remembered */
#define MIN_SCALE 1.0f          /* px: the size of a track with one part */
#define PRED_PLANES 3           /* a track's prediction: x, y, present */
#define EXP_MAX_BITS 0x41f00000 /* 30.0f: exp_neg's arguments are clamped to [0, 30] (exp(-30) = 9e-14) */
#define COL_PLANES 4            /* a person's colour per part: R, G, B, sampled (1) or not (0) */
#define COL_STEP 2              /* px between a part's colour samples */
#define COL_SIGMA 30.0f         /* colour levels: two colours this far apart (RMS over R, G, B x sqrt 3) are exp(-1/2) alike */
#define COL_RATE 0.1f           /* a track's colours move this share towards a confident, lone match's */
#define COL_MIN_PARTS 3         /* parts with colours a person and a track must share for their likeness to count */
#define COL_NEUTRAL 0.5f        /* the likeness taken when there is none to measure */
#define COL_MAX_NEAR 8          /* boxes meeting a person's beyond which their colours are not remembered */
#define COL_MAX_SIDE 65535      /* the largest image side opp_track_image takes */
#define HEADING_TAU 0.3         /* s: a track's heading is its velocity low-passed with this time constant */
#define TURN_BACK 0.5f          /* turned back: moving against the heading at this share of its speed */
#define EDGE_MARGIN 0.1f        /* a track this share of its size from an edge of the frame is at the edge */
#define NOISE_MAX 3.0f          /* noise_falloff widens the falloff to this many times kappa at most */
#define NOISE_STEP 0.02f        /* the noise estimate moves by this share, up or down, with each steady match */
#define NOISE_SAMPLES 4         /* matches a frame that measure it (in turn among the tracks): plenty, and cheap */

typedef struct tracker_header {
    uint32_t magic;
    int num_parts;
    opp_track_params p;
    int num_tracks;  /* live tracks: records 0..num_tracks-1 */
    int next_id;
    int matched;     /* confirmed tracks matched in the last frame */
    int has_time;
    double last_time;
    long long births, deaths, frames;
    float frame_w, frame_h; /* smoothed parts are kept in [0, w - 1] x [0, h - 1]; 0 x 0: unbounded */
    float noise;     /* the detections' noise (falloff), in sizes: the median of steady matches' part offsets */
    size_t size;     /* the block size init was given (checked on every call) */
    size_t off_tracks, off_parts, off_people, off_pred, off_cands; /* off_people: infos, then xyv */
    size_t off_assign; /* optimal matching: scores (max_people x max_tracks), connections, its workspace */
    size_t off_colour; /* per person, num_parts x COL_PLANES floats: this frame's colours */
} tracker_header;

typedef struct track_rec {
    int id;          /* -1 while tentative */
    int hits;
    int matched;     /* scratch: the person matched this frame, or -1 */
    int turned;      /* scratch: its match turned back (turned_back): it ends this frame */
    double last;     /* time of the last match */
    float vx, vy;    /* px/s, low-passed */
    float hx, hy;    /* px/s: the heading, its velocity low-passed more (turned_back) */
} track_rec;

typedef struct part_rec {
    double seen;     /* time the part was last detected */
    double filtered; /* time of the filter's last step */
    double shown;    /* time the part last scored above part_off while shown */
    float x, y;      /* last detected position */
    float fx, fy;    /* filtered position */
    float dx, dy;    /* filtered derivative, px/s (relative to the track's motion with motion = 1) */
    float score;     /* last detected score */
    int present;     /* x, y hold a detection not older than max_age */
    int visible;     /* hysteresis state */
    int pad;
    float col[3];    /* the part's remembered colour (slow average; opp_track_image) */
    float col_n;     /* 0: no colour remembered yet */
} part_rec;

typedef struct person_info {
    float x0, y0, x1, y1; /* bounding box of the present parts */
    int count;            /* present parts */
    int pass;             /* 1: confident, 2: weak, 0: not tracked */
    int track;            /* matched track record, or -1 */
    int coloured;         /* parts with a colour sampled this frame */
} person_info;

typedef struct track_pred {
    float x0, y0, x1, y1;
    float scale;
    float spread; /* the falloff's factor: 1 + widen * seconds unseen before the last frame */
    int count;
    int pad;
} track_pred;

typedef struct pair_cand {
    float weight; /* similarity x its total (match_pass): the pairing's worth */
    int person;
    int track;
} pair_cand;

static size_t align_up(size_t n) { return (n + 15u) & ~(size_t)15u; }

/* The defaults, as the header lists them (one table: the header's comments and this agree). */
static const opp_track_params DEFAULT_PARAMS = {
    .max_tracks = 64,
    .max_people = 64,
    .high_score = 0.2f,
    .low_score = 0.05f,
    .match_similarity = 0.2f,
    .weak_match_similarity = 0.6f,
    .kappa = 0.1f,
    .part_threshold = 0.0f,
    .min_hits = 2,
    .max_age = 2.0f,
    .smooth = 1,
    .motion = 1,
    .min_cutoff = 0.3f,
    .beta = 2.0f,
    .d_cutoff = 1.0f,
    .part_on = 0.2f,
    .part_off = 0.1f,
    .part_hold = 0.5f,
    .widen = 1.5f,
    .still_speed = 0.3f,
    .assignment = OPP_ASSIGN_OPTIMAL,
    .appearance = 0.8f,
    .turn_speed = 0.25f,
    .noise_falloff = 8.0f,
};

void opp_default_track_params(opp_track_params *p)
{
    if (p) *p = DEFAULT_PARAMS;
}

const char *opp_track_strerror(int code)
{
    switch (code) {
    case OPP_WARN_TRACKS_FULL: return "max_tracks tracks live: a new person got no track";
    case OPP_WARN_TRACKS_FULL | OPP_WARN_PEOPLE_TRUNCATED:
        return "more people than max_people, and max_tracks tracks live: some people got no track";
    case OPP_ERR_STATE: return "tracker state too small, misaligned or not set up by opp_tracker_init";
    case OPP_ERR_TIMESTAMP: return "timestamp not finite or not after the previous frame's";
    case OPP_ERR_PARAMS: return "a tracking parameter is out of range";
    case OPP_ERR_SKELETON: return "num_parts outside 1..OPP_MAX_PARTS";
    case OPP_ERR_ARGUMENT: return "num_people is negative, or a frame size is not 0 x 0 nor within 1..1e6";
    default: return opp_strerror(code);
    }
}

static int in_range(float v, float lo, float hi) { return v >= lo && v <= hi; } /* false for NaN */

static int check_params(const opp_track_params *p)
{
    const float big = 3.0e38f;
    if (p->max_tracks < 1 || p->max_tracks > OPP_MAX_TRACKS) return OPP_ERR_PARAMS;
    if (p->max_people < 1 || p->max_people > OPP_MAX_TRACKS) return OPP_ERR_PARAMS;
    if (!in_range(p->high_score, -big, big) || !in_range(p->low_score, -big, p->high_score)) return OPP_ERR_PARAMS;
    if (!in_range(p->match_similarity, 0.0f, 1.0f) || !in_range(p->weak_match_similarity, 0.0f, 1.0f))
        return OPP_ERR_PARAMS;
    if (!in_range(p->kappa, 1e-3f, 10.0f)) return OPP_ERR_PARAMS;
    if (!in_range(p->part_threshold, -big, big)) return OPP_ERR_PARAMS;
    if (p->min_hits < 1 || p->min_hits > 1000) return OPP_ERR_PARAMS;
    if (!(p->max_age > 0.0f) || !(p->max_age <= 3600.0f)) return OPP_ERR_PARAMS;
    if ((p->smooth != 0 && p->smooth != 1) || (p->motion != 0 && p->motion != 1)) return OPP_ERR_PARAMS;
    if (!(p->min_cutoff > 0.0f) || !(p->min_cutoff <= 1000.0f)) return OPP_ERR_PARAMS;
    if (!in_range(p->beta, 0.0f, 1e6f)) return OPP_ERR_PARAMS;
    if (!(p->d_cutoff > 0.0f) || !(p->d_cutoff <= 1000.0f)) return OPP_ERR_PARAMS;
    if (!in_range(p->part_on, -big, big) || !in_range(p->part_off, -big, p->part_on)) return OPP_ERR_PARAMS;
    if (!in_range(p->part_hold, 0.0f, p->max_age)) return OPP_ERR_PARAMS;
    if (!in_range(p->widen, 0.0f, 1000.0f) || !in_range(p->still_speed, 0.0f, 1000.0f)) return OPP_ERR_PARAMS;
    if (!in_range(p->turn_speed, 0.0f, 1000.0f)) return OPP_ERR_PARAMS;
    if (!in_range(p->noise_falloff, 0.0f, 1000.0f)) return OPP_ERR_PARAMS;
    if (p->assignment != OPP_ASSIGN_GREEDY && p->assignment != OPP_ASSIGN_OPTIMAL) return OPP_ERR_PARAMS;
    if (!in_range(p->appearance, 0.0f, 1.0f)) return OPP_ERR_PARAMS;
    return OPP_OK;
}

/* The block's layout; the sizes are bounded by the limits (at most a few tens of MB). */
static size_t layout(int k, const opp_track_params *p, tracker_header *h)
{
    size_t t = (size_t)p->max_tracks, n = (size_t)p->max_people;
    size_t off = align_up(sizeof(tracker_header));
    h->off_tracks = off;
    off += align_up(t * sizeof(track_rec));
    h->off_parts = off;
    off += align_up(t * (size_t)k * sizeof(part_rec));
    h->off_people = off;
    off += align_up(n * sizeof(person_info) + n * (size_t)k * 3 * sizeof(float));
    h->off_pred = off;
    off += align_up(t * sizeof(track_pred) + t * (size_t)k * PRED_PLANES * sizeof(float));
    h->off_cands = off;
    off += align_up(n * t * sizeof(pair_cand));
    h->off_assign = off;
    off += align_up(n * t * sizeof(float) + (t < n ? t : n) * sizeof(opp_connection));
    off += align_up(oppi_assign_ws_size(t > n ? (int)t : (int)n));
    h->off_colour = off;
    off += align_up(n * (size_t)k * COL_PLANES * sizeof(float));
    return off;
}

int opp_tracker_size(int num_parts, const opp_track_params *params, size_t *size)
{
    tracker_header h;
    int rc;
    if (!params || !size) return OPP_ERR_NULL_POINTER;
    if (num_parts < 1 || num_parts > OPP_MAX_PARTS) return OPP_ERR_SKELETON;
    if ((rc = check_params(params)) != OPP_OK) return rc;
    *size = layout(num_parts, params, &h);
    return OPP_OK;
}

int opp_tracker_init(void *state, size_t state_size, int num_parts, const opp_track_params *params)
{
    tracker_header h;
    size_t need;
    int rc;
    if (!state || !params) return OPP_ERR_NULL_POINTER;
    if (num_parts < 1 || num_parts > OPP_MAX_PARTS) return OPP_ERR_SKELETON;
    if ((rc = check_params(params)) != OPP_OK) return rc;
    memset(&h, 0, sizeof h);
    need = layout(num_parts, params, &h);
    if (state_size < need || (uintptr_t)state % OPP_TRACKER_ALIGN != 0) return OPP_ERR_STATE;
    h.magic = TRACK_MAGIC;
    h.num_parts = num_parts;
    h.p = *params;
    h.next_id = 1;
    /* where the falloff begins to widen: a new tracker starts at kappa */
    h.noise = params->noise_falloff > 0.0f ? params->kappa / params->noise_falloff : 0.0f;
    h.size = need;
    memcpy(state, &h, sizeof h);
    return OPP_OK;
}

/* The header of a state opp_tracker_init set up, or NULL. */
static tracker_header *header_of(const void *state)
{
    tracker_header *h = (tracker_header *)state;
    tracker_header probe;
    if ((uintptr_t)state % OPP_TRACKER_ALIGN != 0 || h->magic != TRACK_MAGIC) return NULL;
    /* A corrupted header must not send us outside the block: recompute the layout. */
    if (h->num_parts < 1 || h->num_parts > OPP_MAX_PARTS || check_params(&h->p) != OPP_OK) return NULL;
    if (layout(h->num_parts, &h->p, &probe) != h->size || probe.off_cands != h->off_cands
        || probe.off_parts != h->off_parts || probe.off_people != h->off_people
        || probe.off_pred != h->off_pred || probe.off_tracks != h->off_tracks || probe.off_assign != h->off_assign
        || probe.off_colour != h->off_colour)
        return NULL;
    if (h->num_tracks < 0 || h->num_tracks > h->p.max_tracks) return NULL;
    return h;
}

/* The similarity's falloff, in sizes: kappa, or noise_falloff times the detections'
 * measured noise where that is wider (at most NOISE_MAX kappa). A real network's
 * keypoints scatter more than kappa allows for, and a falloff that tight drops people it
 * should keep (bench track: on ground-truth maps the noise settles near 0.01 of a size
 * and kappa holds; on the shipped model near 0.03-0.04, and the widened falloff lifts
 * IDF1 0.644 -> 0.685 over 24 scenes). */
static float falloff(const opp_track_params *p, float noise)
{
    float k = p->noise_falloff * noise, most = NOISE_MAX * p->kappa;
    return k > p->kappa ? (k < most ? k : most) : p->kappa;
}

int opp_tracker_stats(const void *state, opp_track_stats *stats)
{
    const tracker_header *h;
    const track_rec *tr;
    int i;
    if (!state || !stats) return OPP_ERR_NULL_POINTER;
    if (!(h = header_of(state))) return OPP_ERR_STATE;
    tr = (const track_rec *)((const char *)state + h->off_tracks);
    memset(stats, 0, sizeof *stats);
    for (i = 0; i < h->num_tracks; i++) {
        if (tr[i].id >= 0) stats->live++;
        else stats->tentative++;
    }
    stats->matched = h->matched;
    stats->births = h->births;
    stats->deaths = h->deaths;
    stats->frames = h->frames;
    stats->falloff = falloff(&h->p, h->noise);
    return OPP_OK;
}

int opp_tracker_set_frame(void *state, float width, float height)
{
    tracker_header *h;
    if (!state) return OPP_ERR_NULL_POINTER;
    if (!(h = header_of(state))) return OPP_ERR_STATE;
    if (!(width == 0.0f && height == 0.0f) && !(in_range(width, 1.0f, MAX_COORD) && in_range(height, 1.0f, MAX_COORD)))
        return OPP_ERR_ARGUMENT;
    h->frame_w = width, h->frame_h = height;
    return OPP_OK;
}

/* -- helpers --------------------------------------------------------------------- */

static int part_ok(const float *kp, float threshold)
{
    float x = kp[0], y = kp[1], s = kp[2];
    return s > threshold && isfinite(s) && x >= -MAX_COORD && x <= MAX_COORD && y >= -MAX_COORD && y <= MAX_COORD;
}

/* The smoothing factor of a first-order low-pass at cutoff Hz over dt seconds. */
static float alpha(float cutoff, double dt)
{
    float r = 6.2831853f * cutoff * (float)dt; /* dt / tau */
    return r / (r + 1.0f);
}

static float finite_or(float v, float fallback) { return isfinite(v) ? v : fallback; }
/* v within [0, size - 1] (a pixel centre of the frame); size 0: unbounded. v is finite. */
static float in_frame(float v, float size) { return size > 0.0f ? (v < 0.0f ? 0.0f : v > size - 1.0f ? size - 1.0f : v) : v; }
/* Inline min/max (fminf/fmaxf are calls without -ffast-math); operands are never NaN here. */
static float min2(float a, float b) { return a < b ? a : b; }
static float max2(float a, float b) { return a > b ? a : b; }

/* exp(-min(e, 30)) for e >= 0 (NaN counts as 30), relative error below 5e-6: 2^round(x)
 * from the exponent bits times a degree-5 polynomial of 2^f, f in [-0.5, 0.5]. Branch-free,
 * without a libm call, and clamped with an integer min (a float select would not
 * vectorise without -fno-trapping-math: non-negative floats order as their bits), so
 * the similarity loop vectorises; the float-to-int conversion is in range. */
static float exp_neg(float e)
{
    float x, f, p, scale;
    int32_t eb;
    int i;
    uint32_t bits;
    memcpy(&eb, &e, sizeof eb);
    eb = eb < EXP_MAX_BITS ? eb : EXP_MAX_BITS;
    memcpy(&e, &eb, sizeof e);
    x = e * -1.44269504f; /* log2(exp(-e)), in [-43.3, 0] */
    i = -(int)(0.5f - x);
    bits = (uint32_t)(i + 127) << 23;
    f = x - (float)i;
    p = 1.0f + f * (0.693147181f + f * (0.240226507f + f * (0.0555041087f + f * (0.00961812911f
        + f * 0.00133335581f))));
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* Heapsort of the candidates, best first (weight descending, then person, then track
 * ascending: deterministic). In place: no allocation, O(n log n). */
static int cand_before(const pair_cand *a, const pair_cand *b)
{
    if (a->weight != b->weight) return a->weight < b->weight; /* a min-heap root goes last: sorted descending */
    if (a->person != b->person) return a->person > b->person;
    return a->track > b->track;
}

static void sift(pair_cand *c, size_t root, size_t n)
{
    for (;;) {
        size_t child = 2 * root + 1;
        pair_cand tmp;
        if (child >= n) return;
        if (child + 1 < n && cand_before(&c[child + 1], &c[child])) child++;
        if (!cand_before(&c[child], &c[root])) return;
        tmp = c[root], c[root] = c[child], c[child] = tmp;
        root = child;
    }
}

static void sort_candidates(pair_cand *c, size_t n)
{
    size_t i;
    if (n < 2) return;
    for (i = n / 2; i-- > 0;) sift(c, i, n);
    for (i = n - 1; i > 0; i--) {
        pair_cand tmp = c[0];
        c[0] = c[i], c[i] = tmp;
        sift(c, 0, i);
    }
}

/* -- one frame --------------------------------------------------------------------- */

typedef struct frame_ctx {
    tracker_header *h;
    const opp_track_params *p;
    int k;
    track_rec *tracks;
    part_rec *parts;
    person_info *people;
    track_pred *pred;
    /* Per track k predicted x, then k y, then k v (1 present, 0 missing with x = y = 0);
     * the same per person: planar, so the similarity loop vectorises. */
    float *pred_xyv;
    float *people_xyv;
    pair_cand *cands;
    float *scores;         /* optimal matching: [max_people][max_tracks] */
    opp_connection *conns; /* its matches */
    assign_ws aws;         /* its workspace (paf_assignment.c's) */
    double now;
    float kappa;           /* this frame's falloff: p->kappa, or wider for noisy detections (falloff) */
    int noise_every;       /* the tracks that measure the noise this frame: those at (index + frames) % this == 0 */
    const float *kp;
    float *colour;         /* per person, k x COL_PLANES: this frame's colours (all unsampled without an image) */
    const unsigned char *image; /* opp_track_image's frame, or NULL */
    int img_w, img_h, img_stride;
} frame_ctx;

/* Each live track's keypoints moved by its velocity to now, their box and its size. */
static void predict(frame_ctx *c)
{
    int i, j, k = c->k;
    for (i = 0; i < c->h->num_tracks; i++) {
        const track_rec *t = &c->tracks[i];
        const part_rec *pr = &c->parts[(size_t)i * k];
        float *xyv = &c->pred_xyv[(size_t)i * k * PRED_PLANES];
        track_pred *tp = &c->pred[i];
        float fx0 = 0.0f, fy0 = 0.0f, fx1 = 0.0f, fy1 = 0.0f;
        int fresh = 0;
        /* Unseen for a while, the track's prediction is less sure: its falloff widens (by the
         * time from its last match to the last frame: 0 for a track seen then). */
        double unseen = c->h->has_time ? c->h->last_time - t->last : 0.0;
        tp->spread = 1.0f + c->p->widen * (float)(unseen > 0.0 ? (unseen < c->p->max_age ? unseen : c->p->max_age) : 0.0);
        tp->count = 0;
        tp->x0 = tp->y0 = 0.0f;
        tp->x1 = tp->y1 = 0.0f;
        for (j = 0; j < k; j++) {
            float dt, x, y;
            xyv[j] = xyv[k + j] = xyv[2 * k + j] = 0.0f;
            if (!pr[j].present) continue;
            dt = (float)(c->now - pr[j].seen);
            x = finite_or(pr[j].x + t->vx * dt, pr[j].x);
            y = finite_or(pr[j].y + t->vy * dt, pr[j].y);
            xyv[j] = x, xyv[k + j] = y, xyv[2 * k + j] = 1.0f;
            if (!tp->count) tp->x0 = tp->x1 = x, tp->y0 = tp->y1 = y;
            tp->x0 = min2(tp->x0, x), tp->x1 = max2(tp->x1, x);
            tp->y0 = min2(tp->y0, y), tp->y1 = max2(tp->y1, y);
            tp->count++;
            if (pr[j].seen == t->last) {
                if (!fresh) fx0 = fx1 = x, fy0 = fy1 = y;
                fx0 = min2(fx0, x), fx1 = max2(fx1, x);
                fy0 = min2(fy0, y), fy1 = max2(fy1, y);
                fresh++;
            }
        }
        /* The size from the parts of the last match only: parts remembered from earlier
         * (hidden since, or from a wrong match) must not inflate it, or the track would
         * match anyone nearby. */
        if (fresh >= 2) tp->scale = max2(MIN_SCALE, max2(fx1 - fx0, fy1 - fy0));
        else tp->scale = max2(MIN_SCALE, max2(tp->x1 - tp->x0, tp->y1 - tp->y0));
    }
}

/* Boxes, part counts and passes of the people of this frame. */
static void describe_people(frame_ctx *c, const float *scores, int n)
{
    const opp_track_params *p = c->p;
    int i, j, k = c->k;
    for (i = 0; i < n; i++) {
        person_info *pi = &c->people[i];
        const float *kp = &c->kp[(size_t)i * k * 3];
        float *xyv = &c->people_xyv[(size_t)i * k * 3];
        float s = scores[i];
        pi->count = 0;
        pi->track = -1;
        pi->x0 = pi->y0 = pi->x1 = pi->y1 = 0.0f;
        for (j = 0; j < k; j++) {
            const float *q = &kp[3 * j];
            xyv[j] = xyv[k + j] = xyv[2 * k + j] = 0.0f;
            if (!part_ok(q, p->part_threshold)) continue;
            xyv[j] = q[0], xyv[k + j] = q[1], xyv[2 * k + j] = 1.0f;
            if (!pi->count) pi->x0 = pi->x1 = q[0], pi->y0 = pi->y1 = q[1];
            pi->x0 = min2(pi->x0, q[0]), pi->x1 = max2(pi->x1, q[0]);
            pi->y0 = min2(pi->y0, q[1]), pi->y1 = max2(pi->y1, q[1]);
            pi->count++;
        }
        if (!pi->count || !isfinite(s) || s < p->low_score) pi->pass = 0;
        else pi->pass = s >= p->high_score ? 1 : 2;
    }
}

/* Adds the pixel under (x, y) to rgb: 1, or 0 when (x, y) is outside the image (x, y
 * finite: checked before the conversion to an integer). */
static int add_pixel(const frame_ctx *c, float x, float y, float *rgb)
{
    const unsigned char *px;
    if (!(x >= 0.0f && y >= 0.0f && x <= (float)(c->img_w - 1) && y <= (float)(c->img_h - 1))) return 0;
    px = c->image + (size_t)(int)y * (size_t)c->img_stride + 3u * (size_t)(int)x;
    rgb[0] += px[0], rgb[1] += px[1], rgb[2] += px[2];
    return 1;
}

/* The first of a part's colour samples at (x, y) when all of them are inside the image
 * (the usual case: no check per pixel), else NULL. */
static const unsigned char *samples_at(const frame_ctx *c, float x, float y)
{
    if (!(x >= (float)COL_STEP && y >= 0.0f && x <= (float)(c->img_w - 1 - COL_STEP) && y <= (float)(c->img_h - 1)))
        return NULL;
    return c->image + (size_t)(int)y * (size_t)c->img_stride + 3u * (size_t)((int)x - COL_STEP);
}

/* Each person's colour per part: the mean of three pixels 2 px apart along the part's row
 * (one pixel is mostly the texture's). They are 15 bytes of one row, one cache line or
 * two where a 3 x 3 grid took three or six, and the frame is seldom in cache: bench track
 * at 20 people, tracking with colours on cold frames, 0.059-0.063 -> 0.045-0.051 ms a
 * frame; IDF1 -0.001 to +0.005 on its scene sets. */
static void sample_colours(frame_ctx *c, int n)
{
    int i, j, k = c->k;
#if defined(__GNUC__) && !defined(OPP_NO_PREFETCH)
    /* Ask for every part's line first, so that the misses overlap instead of coming one
     * after another (with the 3 x 3 grid: 0.060 -> 0.054 ms a frame, 20 people). */
    for (i = 0; c->image && i < n; i++) {
        const float *xyv = &c->people_xyv[(size_t)i * k * 3];
        for (j = 0; j < k; j++) {
            const unsigned char *px = xyv[2 * k + j] != 0.0f ? samples_at(c, xyv[j], xyv[k + j]) : NULL;
            if (px) __builtin_prefetch(px);
        }
    }
#endif
    for (i = 0; i < n; i++) {
        const float *xyv = &c->people_xyv[(size_t)i * k * 3];
        float *col = &c->colour[(size_t)i * k * COL_PLANES];
        person_info *pi = &c->people[i];
        memset(col, 0, sizeof(float) * COL_PLANES * (size_t)k);
        pi->coloured = 0;
        if (!c->image || !pi->count) continue;
        for (j = 0; j < k; j++) {
            float x = xyv[j], y = xyv[k + j], *rgb = &col[COL_PLANES * j];
            const unsigned char *px;
            int got = 0, dx;
            if (xyv[2 * k + j] == 0.0f) continue;
            if ((px = samples_at(c, x, y))) {
                unsigned sum[3] = {0, 0, 0};
                for (dx = 0; dx < 3 * 3 * COL_STEP; dx += 3 * COL_STEP)
                    sum[0] += px[dx], sum[1] += px[dx + 1], sum[2] += px[dx + 2];
                rgb[0] = (float)sum[0], rgb[1] = (float)sum[1], rgb[2] = (float)sum[2];
                got = 3;
            } else {
                for (dx = -COL_STEP; dx <= COL_STEP; dx += COL_STEP) got += add_pixel(c, x + (float)dx, y, rgb);
            }
            if (!got) continue;
            rgb[0] /= (float)got, rgb[1] /= (float)got, rgb[2] /= (float)got;
            rgb[3] = 1.0f;
            pi->coloured++;
        }
    }
}

/* How alike person i's colours and track t's remembered ones are, in [0, 1]: the mean
 * over the parts both have of exp(-d^2 / 2 (sqrt 3 COL_SIGMA)^2), d the RGB distance;
 * COL_NEUTRAL with fewer than COL_MIN_PARTS such parts. */
static float colour_likeness(const frame_ctx *c, int i, int t)
{
    const float *col = &c->colour[(size_t)i * c->k * COL_PLANES];
    const part_rec *pr = &c->parts[(size_t)t * c->k];
    const float inv = 1.0f / (2.0f * 3.0f * COL_SIGMA * COL_SIGMA);
    float sum = 0.0f;
    int j, m = 0;
    if (c->people[i].coloured < COL_MIN_PARTS) return COL_NEUTRAL;
    for (j = 0; j < c->k; j++) {
        const float *a = &col[COL_PLANES * j];
        float dr, dg, db;
        if (a[3] == 0.0f || pr[j].col_n == 0.0f) continue;
        dr = a[0] - pr[j].col[0], dg = a[1] - pr[j].col[1], db = a[2] - pr[j].col[2];
        sum += exp_neg((dr * dr + dg * dg + db * db) * inv);
        m++;
    }
    return m >= COL_MIN_PARTS ? sum / (float)m : COL_NEUTRAL;
}

/* Track t takes the colours of person i (a confident match): the first ones as they are,
 * then a slow average; only of parts clear of everyone else's box and every other track's
 * predicted box (grown by a tenth of the person's size: their colours are surely the
 * person's own). The boxes that meet the person's are gathered first (few, or the person
 * is in a crowd and nothing is taken), so each part is checked against those alone. */
static void remember_colours(frame_ctx *c, int n, int t, int i)
{
    const float *col = &c->colour[(size_t)i * c->k * COL_PLANES];
    const float *xyv = &c->people_xyv[(size_t)i * c->k * 3];
    const person_info *pi = &c->people[i];
    part_rec *pr = &c->parts[(size_t)t * c->k];
    float g = 0.1f * max2(pi->x1 - pi->x0, pi->y1 - pi->y0);
    float near[COL_MAX_NEAR][4]; /* the boxes that meet the person's, grown by g */
    int j, ch, m = 0, o;
    if (!pi->coloured) return;
    for (o = 0; o < n + c->h->num_tracks; o++) {
        float b[4];
        if (o < n) {
            const person_info *q = &c->people[o];
            if (o == i || !q->count) continue;
            b[0] = q->x0, b[1] = q->y0, b[2] = q->x1, b[3] = q->y1;
        } else {
            const track_pred *q = &c->pred[o - n];
            if (o - n == t || !q->count) continue;
            b[0] = q->x0, b[1] = q->y0, b[2] = q->x1, b[3] = q->y1;
        }
        b[0] -= g, b[1] -= g, b[2] += g, b[3] += g;
        if (b[0] > pi->x1 || pi->x0 > b[2] || b[1] > pi->y1 || pi->y0 > b[3]) continue;
        if (m == COL_MAX_NEAR) return; /* a crowd: nobody's colours are surely their own */
        memcpy(near[m++], b, sizeof b);
    }
    for (j = 0; j < c->k; j++) {
        const float *a = &col[COL_PLANES * j];
        float x = xyv[j], y = xyv[c->k + j];
        if (a[3] == 0.0f) continue;
        for (o = 0; o < m; o++)
            if (x >= near[o][0] && x <= near[o][2] && y >= near[o][1] && y <= near[o][3]) break;
        if (o < m) continue;
        for (ch = 0; ch < 3; ch++)
            pr[j].col[ch] = pr[j].col_n == 0.0f ? a[ch] : pr[j].col[ch] + COL_RATE * (a[ch] - pr[j].col[ch]);
        pr[j].col_n = 1.0f;
    }
}

/* Keypoint similarity of person i and track t: the sum over the parts both have of
 * exp(-d^2 / 2(kappa s)^2), s the larger of their sizes, divided by the person's part
 * count: the share of the person the track explains (a piece of someone is explained
 * whole: a person coming out from behind another keeps their track). *total gets the
 * sum (a pairing's worth is the similarity times it: see match_pass).
 * 0 when their boxes, grown by gate * s, do not overlap: then every term is below the
 * least similarity that matches, and so is the similarity (a lossless gate). */
static float similarity(const frame_ctx *c, int i, int t, float gate, int widened, float *total)
{
    const person_info *pi = &c->people[i];
    const track_pred *tp = &c->pred[t];
    int j, k = c->k;
    const float *ax = &c->people_xyv[(size_t)i * k * 3], *ay = ax + k, *av = ay + k;
    const float *bx = &c->pred_xyv[(size_t)t * k * PRED_PLANES], *by = bx + k, *bv = by + k;
    float s, margin, sum = 0.0f, inv;
    float term[OPP_MAX_PARTS];
    *total = 0.0f;
    if (!tp->count || !pi->count) return 0.0f;
    s = max2(tp->scale, max2(MIN_SCALE, max2(pi->x1 - pi->x0, pi->y1 - pi->y0)));
    if (widened) s *= tp->spread; /* only the falloff widens; the size stays the larger box's */
    margin = gate * s;
    if (pi->x0 > tp->x1 + margin || tp->x0 > pi->x1 + margin || pi->y0 > tp->y1 + margin || tp->y0 > pi->y1 + margin)
        return 0.0f;
    inv = 1.0f / (2.0f * c->kappa * c->kappa * s * s);
    /* Two loops: the first, branch-free, vectorises (no float sum in it: without
     * -ffast-math a float reduction does not); the second adds up. Missing parts are
     * (0, 0) with v = 0: finite, and masked by w. */
    for (j = 0; j < k; j++) {
        float dx = ax[j] - bx[j], dy = ay[j] - by[j], w = av[j] * bv[j];
        float e = (dx * dx + dy * dy) * inv;
        term[j] = w * exp_neg(e);
    }
    for (j = 0; j < k; j++) sum += term[j];
    if (!(sum > 0.0f) || !isfinite(sum)) return 0.0f; /* no part in common */
    *total = sum;
    return sum / (float)pi->count;
}

/* One matching pass: people of `pass` against the tracks still free that are confirmed
 * (or tentative), candidate pairs of similarity at least `least`, each worth its
 * similarity times its total. Optimal: the pairs of the largest worth in all (in a
 * crossing, greedy may give the best pair a track the neighbour needed more); greedy:
 * the largest worth first. */
static void match_pass(frame_ctx *c, int n, int pass, int confirmed, float least, int widened)
{
    size_t m = 0, q;
    int i, t;
    /* exp(-d^2 / 2(kappa s)^2) < least beyond d = kappa s sqrt(2 ln(1 / least)) */
    float gate = least > 1e-30f ? c->kappa * sqrtf(2.0f * logf(1.0f / least)) : 3.0e38f;
    for (i = 0; i < n; i++) {
        if (c->people[i].pass != pass || c->people[i].track >= 0) continue; /* matched in an earlier pass */
        for (t = 0; t < c->h->num_tracks; t++) {
            float sim, total;
            if (c->tracks[t].matched >= 0 || (c->tracks[t].id >= 0) != confirmed) continue;
            if (widened && !(c->pred[t].spread > 1.0f)) continue; /* lost tracks only */
            sim = similarity(c, i, t, gate, widened, &total);
            if (sim >= least && sim > 0.0f && c->p->appearance > 0.0f && c->image) {
                /* Colour decides between tracks the geometry cannot tell apart (two people
                 * crossing, one detection left), and keeps a lost track from taking
                 * someone who looks otherwise. */
                float f = 1.0f - c->p->appearance + c->p->appearance * colour_likeness(c, i, t);
                /* Both: scaling the worth alone (the pair's ranking, not whether it may
                 * match) left IDF1 0.89 on bench track's held-out seeds, against 0.92. */
                sim *= f, total *= f;
            }
            if (sim >= least && sim > 0.0f) {
                /* The parts explained times the share of the person explained: a whole
                 * person fitting a track well outweighs a big fragment fitting it loosely
                 * (bench track: IDF1 +0.01 over the total alone, greedy or optimal). */
                c->cands[m].weight = sim * total;
                c->cands[m].person = i, c->cands[m].track = t;
                m++;
            }
        }
    }
    if (c->p->assignment == OPP_ASSIGN_OPTIMAL) {
        int nt = c->h->num_tracks, found;
        if (!m) return;
        for (i = 0; i < n; i++) memset(&c->scores[(size_t)i * c->p->max_tracks], 0, sizeof(float) * (size_t)nt);
        for (q = 0; q < m; q++) c->scores[(size_t)c->cands[q].person * c->p->max_tracks + c->cands[q].track] = c->cands[q].weight;
        found = oppi_assign_optimal(c->scores, c->p->max_tracks, n, nt, c->conns, &c->aws);
        for (i = 0; i < found; i++) {
            c->people[c->conns[i].a].track = c->conns[i].b;
            c->tracks[c->conns[i].b].matched = c->conns[i].a;
        }
        return;
    }
    sort_candidates(c->cands, m);
    for (q = 0; q < m; q++) {
        const pair_cand *cd = &c->cands[q];
        if (c->people[cd->person].track >= 0 || c->tracks[cd->track].matched >= 0) continue;
        c->people[cd->person].track = cd->track;
        c->tracks[cd->track].matched = cd->person;
    }
}

/* The median of v[0..n-1] (n >= 1) by ranks: element i's rank is the number of elements
 * before it in (value, index) order. Branch-free (a sort's compares on noisy moves
 * mispredict: an insertion sort cost 9 us a frame at 20 people, this 4), n^2 compares,
 * with n at most OPP_MAX_PARTS (18 for COCO). */
static float median(const float *v, int n)
{
    int i, j, lo = (n - 1) / 2, hi = n / 2;
    float a = v[0], b = v[0];
    for (i = 0; i < n; i++) {
        int r = 0;
        float x = v[i];
        for (j = 0; j < i; j++) r += v[j] <= x; /* two plain loops: they vectorise */
        for (j = i + 1; j < n; j++) r += v[j] < x;
        a = r == lo ? v[i] : a;
        b = r == hi ? v[i] : b;
    }
    return 0.5f * (a + b);
}

/* The track's velocity from the parts seen both now and at its last match, if person kp
 * were its match: 1 and *vx, *vy, or 0 where it would keep its velocity. */
static int next_velocity(const frame_ctx *c, int t, const float *kp, float *vx, float *vy)
{
    const track_rec *tr = &c->tracks[t];
    const part_rec *pr = &c->parts[(size_t)t * c->k];
    double dt = c->now - tr->last;
    float sx, sy, a;
    float mx[OPP_MAX_PARTS], my[OPP_MAX_PARTS]; /* each shared part's move */
    int j, n = 0, fresh = 0;
    if (dt < MIN_DT) dt = MIN_DT;
    for (j = 0; j < c->k; j++) {
        const float *q = &kp[3 * j];
        if (!pr[j].present || pr[j].seen != tr->last) continue;
        fresh++;
        if (!part_ok(q, c->p->part_threshold)) continue;
        mx[n] = q[0] - pr[j].x, my[n] = q[1] - pr[j].y;
        n++;
    }
    if (!n) return 0;
    /* The median move: a match that is partly someone else's (two people merged into one
     * detection) moves a few parts the wrong way; the mean would take them in. */
    sx = (float)(median(mx, n) / dt), sy = (float)(median(my, n) / dt);
    a = tr->hits <= 1 ? 1.0f : alpha(c->p->d_cutoff, dt);
    /* A person sharing few of the parts the track saw last says little about its motion
     * (and in a crowd may be a piece of someone else). */
    if (n < 2 && tr->hits > 1) return 0;
    a *= (float)n / (float)fresh;
    *vx = finite_or(tr->vx + a * (sx - tr->vx), 0.0f);
    *vy = finite_or(tr->vy + a * (sy - tr->vy), 0.0f);
    return 1;
}

/* The track's velocity, and its heading after it, from its match kp. */
static void update_velocity(frame_ctx *c, int t, const float *kp)
{
    track_rec *tr = &c->tracks[t];
    double dt = c->now - tr->last;
    float a;
    if (!next_velocity(c, t, kp, &tr->vx, &tr->vy)) return;
    if (dt < MIN_DT) dt = MIN_DT;
    a = (float)(dt / (HEADING_TAU + dt));
    tr->hx = finite_or(tr->hx + a * (tr->vx - tr->hx), 0.0f);
    tr->hy = finite_or(tr->hy + a * (tr->vy - tr->hy), 0.0f);
}

/* The frame the tracks live in: opp_tracker_set_frame's, else opp_track_image's image;
 * 0 where none is known. */
static int known_frame(const frame_ctx *c, float *w, float *h)
{
    *w = c->h->frame_w, *h = c->h->frame_h;
    if (!(*w > 0.0f) && c->image) *w = (float)c->img_w, *h = (float)c->img_h;
    return *w > 0.0f;
}

/* Whether track t is at an edge of the frame (known_frame) and heading out through it:
 * its predicted box within EDGE_MARGIN of its size of that edge. */
static int heading_out(const frame_ctx *c, int t)
{
    const track_pred *q = &c->pred[t];
    const track_rec *tr = &c->tracks[t];
    float w, h, m = EDGE_MARGIN * q->scale;
    if (!known_frame(c, &w, &h) || !q->count) return 0;
    return (q->x0 < m && tr->hx < 0.0f) || (q->x1 > w - 1.0f - m && tr->hx > 0.0f)
        || (q->y0 < m && tr->hy < 0.0f) || (q->y1 > h - 1.0f - m && tr->hy > 0.0f);
}

/* Whether person i, matched to confirmed track t, is rather somebody coming in where the
 * track's person went out: the track is heading out through an edge of the frame faster
 * than turn_speed sizes per second, and with this match its velocity would point back
 * against its heading at more than TURN_BACK of the heading's speed. (bench track: where
 * one walker leaves as another comes in at the same place, the two merge into one
 * detection for a few frames, and the track went on with the newcomer; its velocity
 * turned round within about 0.2 s, which a walker does not do.) */
static int turned_back(const frame_ctx *c, int t, int i)
{
    const track_rec *tr = &c->tracks[t];
    float vx, vy, hh = tr->hx * tr->hx + tr->hy * tr->hy, least = c->p->turn_speed * c->pred[t].scale;
    if (!(c->p->turn_speed > 0.0f) || !(hh > least * least) || !heading_out(c, t)) return 0;
    if (!next_velocity(c, t, &c->kp[(size_t)i * c->k * 3], &vx, &vy)) return 0;
    return vx * tr->hx + vy * tr->hy < -TURN_BACK * hh;
}

/* A part's filter starts over at (x, y). */
static void reset_filter(part_rec *pr, float x, float y, double now)
{
    pr->fx = x, pr->fy = y;
    pr->dx = pr->dy = 0.0f;
    pr->filtered = now;
    pr->shown = now;
}

/* One step of a part's One Euro filter towards the detection (x, y). */
/* The time step of a filter and what depends on it alone; most parts of a frame share
 * one step, so it is computed once per step length (step_for). */
typedef struct step {
    double from; /* the filter time it is for (a part's `filtered`) */
    float dt, inv_dt, ad, r0; /* seconds, 1 / dt, alpha at d_cutoff, 2 pi dt */
} step;

static const step *step_for(step *cache, const opp_track_params *p, double from, double now)
{
    double dt = now - from;
    if (cache->from == from) return cache;
    if (dt < MIN_DT) dt = MIN_DT;
    cache->from = from;
    cache->dt = (float)dt;
    cache->inv_dt = (float)(1.0 / dt);
    cache->ad = alpha(p->d_cutoff, dt);
    cache->r0 = 6.2831853f * (float)dt;
    return cache;
}

static void one_euro(const opp_track_params *p, float vx, float vy, part_rec *pr, float x, float y,
                     float scale, double now, step *cache)
{
    const step *st = step_for(cache, p, pr->filtered, now);
    float px, py, ddx, ddy, speed, a, r;
    px = pr->fx + vx * st->dt;
    py = pr->fy + vy * st->dt;
    ddx = (x - px) * st->inv_dt, ddy = (y - py) * st->inv_dt;
    pr->dx += st->ad * (ddx - pr->dx);
    pr->dy += st->ad * (ddy - pr->dy);
    speed = sqrtf(pr->dx * pr->dx + pr->dy * pr->dy) / scale;
    r = st->r0 * (p->min_cutoff + p->beta * finite_or(speed, 0.0f));
    a = r / (r + 1.0f); /* alpha(cutoff, dt) */
    pr->fx = px + a * (x - px);
    pr->fy = py + a * (y - py);
    pr->filtered = now;
    if (!isfinite(pr->fx) || !isfinite(pr->fy) || !isfinite(pr->dx) || !isfinite(pr->dy))
        reset_filter(pr, x, y, now);
}

/* The detections' noise (falloff), measured on confirmed track t, matched in the last
 * frame too, as it takes confident person kp: the median offset of their parts from the
 * track's prediction, in sizes (the median keeps a part or two of somebody else's out of
 * it). The estimate steps up or down by a share of itself: it settles at the median over
 * matches, and a few people in a crowd, whose matches are all off, cannot carry it while
 * the others vote it back (a running mean could: a swap on one scene of 24). */
static void measure_noise(frame_ctx *c, int t, const float *kp)
{
    const part_rec *pr = &c->parts[(size_t)t * c->k];
    const float *pxy = &c->pred_xyv[(size_t)t * c->k * PRED_PLANES];
    float off[OPP_MAX_PARTS], inv = 1.0f / c->pred[t].scale, m;
    int j, n = 0;
    for (j = 0; j < c->k; j++) {
        const float *q = &kp[3 * j];
        float dx, dy;
        if (pr[j].seen != c->tracks[t].last || pxy[2 * c->k + j] == 0.0f || !part_ok(q, c->p->part_threshold)) continue;
        dx = q[0] - pxy[j], dy = q[1] - pxy[c->k + j];
        off[n++] = sqrtf(dx * dx + dy * dy) * inv;
    }
    if (n < 3 || !isfinite(m = median(off, n))) return;
    c->h->noise *= m > c->h->noise ? 1.0f + NOISE_STEP : 1.0f - NOISE_STEP;
    c->h->noise = min2(max2(c->h->noise, 1e-4f), 1.0f);
}

/* A matched track takes its person: raw parts for matching, filters, output. */
static void update_track(frame_ctx *c, int t, int i, float *out)
{
    const opp_track_params *p = c->p;
    track_rec *tr = &c->tracks[t];
    part_rec *pr = &c->parts[(size_t)t * c->k];
    const float *kp = &c->kp[(size_t)i * c->k * 3];
    float scale = c->pred[t].scale;
    float buf[3 * OPP_MAX_PARTS]; /* out may alias the input: read all of this person first */
    step cache = {0.0, 0.0f, 0.0f, 0.0f, 0.0f};
    const float *pxy = &c->pred_xyv[(size_t)t * c->k * PRED_PLANES];
    float gate = OUTLIER * c->kappa * scale, dx, dy;
    int j, recent = tr->hits > 1 && c->h->has_time && tr->last == c->h->last_time;
    float vx = 0.0f, vy = 0.0f; /* the filters' motion: the track's, unless it is standing still */
    cache.from = -HUGE_VAL; /* no part's time */
    if (recent && tr->id >= 0 && c->people[i].pass == 1 && p->noise_falloff > 0.0f && (t + c->h->frames) % c->noise_every == 0)
        measure_noise(c, t, kp);
    update_velocity(c, t, kp);
    if (p->motion) {
        /* A standing person's velocity is noise, which would move the whole skeleton at
         * once (the filters cannot smooth it out): it is shrunk by s^2 / (s^2 + still^2),
         * s its speed in sizes per second; a walker's (s >> still) is kept whole. */
        float sp = sqrtf(tr->vx * tr->vx + tr->vy * tr->vy) / scale, st2 = p->still_speed * p->still_speed;
        float keep = st2 > 0.0f ? finite_or(sp * sp / (sp * sp + st2), 1.0f) : 1.0f;
        vx = tr->vx * keep, vy = tr->vy * keep;
    }
    for (j = 0; j < c->k; j++) {
        const float *q = &kp[3 * j];
        part_rec *r = &pr[j];
        int ok = part_ok(q, p->part_threshold);
        float *o = &buf[3 * j];
        if (ok) {
            if (!p->smooth) {
                /* keypoints as given */
            } else if (!r->visible) {
                r->visible = q[2] > p->part_on;
                if (r->visible) reset_filter(r, q[0], q[1], c->now);
            } else if (q[2] > p->part_off) {
                one_euro(p, vx, vy, r, q[0], q[1], scale, c->now, &cache);
                r->shown = c->now;
            }
            /* Remembered for matching, unless far from where a track matched in the last
             * frame expected it: in a crowd, most likely a part of someone else. A part the
             * person lacks now stays remembered (moving with the track) until max_age. */
            dx = q[0] - pxy[j], dy = q[1] - pxy[c->k + j];
            if (!(r->present && recent && dx * dx + dy * dy > gate * gate)) {
                r->x = q[0], r->y = q[1], r->score = q[2], r->seen = c->now;
                r->present = 1;
            }
        }
        if (!p->smooth) {
            o[0] = kp[3 * j], o[1] = kp[3 * j + 1], o[2] = kp[3 * j + 2];
            continue;
        }
        if (r->visible && c->now - r->shown > p->part_hold) r->visible = 0;
        if (r->visible && r->filtered != c->now) {
            /* held: shown but not detected (or too weak) this frame; it moves with the track */
            double dt = c->now - r->filtered;
            float hx = p->motion ? vx : tr->vx, hy = p->motion ? vy : tr->vy;
            r->fx = finite_or(r->fx + (float)(hx * dt), r->fx);
            r->fy = finite_or(r->fy + (float)(hy * dt), r->fy);
            r->filtered = c->now;
        }
        /* The filter's prediction (and a held part moving with its track) may overshoot
         * an edge: what is shown stays in the frame; the state keeps its own value. */
        if (r->visible) o[0] = in_frame(r->fx, c->h->frame_w), o[1] = in_frame(r->fy, c->h->frame_h), o[2] = r->score;
        else o[0] = o[1] = o[2] = 0.0f;
    }
    memcpy(out, buf, sizeof(float) * 3 * (size_t)c->k);
    tr->last = c->now;
    if (tr->hits < 1000000) tr->hits++;
}

/* Whether track t's prediction has left the frame (the middle of its box is outside
 * known_frame's; no frame known: never): the person walked out, and whoever comes in
 * there later is somebody else. */
static int gone_out(const frame_ctx *c, int t)
{
    const track_pred *q = &c->pred[t];
    float w, h, x, y;
    if (!known_frame(c, &w, &h) || !q->count) return 0;
    x = 0.5f * (q->x0 + q->x1), y = 0.5f * (q->y0 + q->y1);
    return x < 0.0f || y < 0.0f || x > w - 1.0f || y > h - 1.0f;
}

/* Parts not seen for max_age are forgotten (they would only mislead the matching). */
static void forget_old_parts(frame_ctx *c, int t)
{
    part_rec *pr = &c->parts[(size_t)t * c->k];
    int j;
    for (j = 0; j < c->k; j++)
        if (pr[j].present && c->now - pr[j].seen > c->p->max_age) pr[j].present = pr[j].visible = 0;
}

static void remove_track(frame_ctx *c, int t)
{
    int last = c->h->num_tracks - 1;
    if (t != last) {
        c->tracks[t] = c->tracks[last];
        memcpy(&c->parts[(size_t)t * c->k], &c->parts[(size_t)last * c->k], sizeof(part_rec) * (size_t)c->k);
    }
    c->h->num_tracks--;
}


/* A tentative track for person i (the caller checked there is room). */
static int new_track(frame_ctx *c, int i)
{
    int t = c->h->num_tracks++;
    track_rec *tr = &c->tracks[t];
    memset(tr, 0, sizeof *tr);
    memset(&c->parts[(size_t)t * c->k], 0, sizeof(part_rec) * (size_t)c->k);
    tr->id = -1;
    tr->matched = i;
    tr->last = c->now;
    c->pred[t].scale = MIN_SCALE;
    c->pred[t].spread = 1.0f;
    c->pred[t].count = 0; /* no prediction (remember_colours reads it) */
    if (c->people[i].count) {
        const person_info *pi = &c->people[i];
        c->pred[t].scale = max2(MIN_SCALE, max2(pi->x1 - pi->x0, pi->y1 - pi->y0));
    }
    c->people[i].track = t;
    return t;
}

int opp_track(void *state, double timestamp, const float *keypoints, const float *scores, int num_people,
              float *out_keypoints, int *ids)
{
    return opp_track_image(state, timestamp, keypoints, scores, num_people, NULL, 0, 0, 0, out_keypoints, ids);
}

int opp_track_image(void *state, double timestamp, const float *keypoints, const float *scores, int num_people,
                    const unsigned char *image, int width, int height, int stride, float *out_keypoints, int *ids)
{
    frame_ctx c;
    tracker_header *h;
    int i, t, n, rc = OPP_OK, k;
    char *base = (char *)state;
    if (!state || (num_people > 0 && (!keypoints || !scores || !ids || !out_keypoints))) return OPP_ERR_NULL_POINTER;
    if (!(h = header_of(state))) return OPP_ERR_STATE;
    if (num_people < 0) return OPP_ERR_ARGUMENT;
    if (image && (width < 1 || width > COL_MAX_SIDE || height < 1 || height > COL_MAX_SIDE || stride < 3 * width))
        return OPP_ERR_ARGUMENT;
    if (!isfinite(timestamp) || (h->has_time && !(timestamp > h->last_time))) return OPP_ERR_TIMESTAMP;
    k = h->num_parts;
    c.h = h, c.p = &h->p, c.k = k, c.now = timestamp, c.kp = keypoints;
    c.kappa = falloff(&h->p, h->noise);
    c.noise_every = h->num_tracks > NOISE_SAMPLES ? (h->num_tracks + NOISE_SAMPLES - 1) / NOISE_SAMPLES : 1;
    c.tracks = (track_rec *)(base + h->off_tracks);
    c.parts = (part_rec *)(base + h->off_parts);
    c.people = (person_info *)(base + h->off_people);
    c.pred = (track_pred *)(base + h->off_pred);
    c.pred_xyv = (float *)(base + h->off_pred + (size_t)h->p.max_tracks * sizeof(track_pred));
    c.people_xyv = (float *)(base + h->off_people + (size_t)h->p.max_people * sizeof(person_info));
    c.cands = (pair_cand *)(base + h->off_cands);
    c.colour = (float *)(base + h->off_colour);
    c.image = image, c.img_w = width, c.img_h = height, c.img_stride = stride;
    c.scores = (float *)(base + h->off_assign);
    c.conns = (opp_connection *)(base + h->off_assign + (size_t)h->p.max_people * (size_t)h->p.max_tracks * sizeof(float));
    {
        size_t t_ = (size_t)h->p.max_tracks, n_ = (size_t)h->p.max_people;
        carver cv = carver_at(base + h->off_assign + align_up(n_ * t_ * sizeof(float) + (t_ < n_ ? t_ : n_) * sizeof(opp_connection)));
        oppi_carve_assign(&cv, t_ > n_ ? (int)t_ : (int)n_, &c.aws);
    }
    n = num_people;
    if (n > h->p.max_people) {
        n = h->p.max_people;
        rc |= OPP_WARN_PEOPLE_TRUNCATED;
    }

    for (t = 0; t < h->num_tracks; t++) c.tracks[t].matched = -1, c.tracks[t].turned = 0;
    predict(&c);
    describe_people(&c, scores, n);
    sample_colours(&c, n);
    /* Confident people first to confirmed tracks, then to tentative ones (a track just
     * begun must not take someone from a track that has followed them for long), then
     * weak people to the confirmed tracks left (as ByteTrack). */
    match_pass(&c, n, 1, 1, h->p.match_similarity, 0);
    match_pass(&c, n, 1, 0, h->p.match_similarity, 0);
    match_pass(&c, n, 2, 1, h->p.weak_match_similarity, 0);
    /* Confident people still without a track would start one: first the tracks lost for a
     * while (their falloff widened by the time unseen) may take them back. */
    if (h->p.widen > 0.0f) match_pass(&c, n, 1, 1, h->p.match_similarity, 1);

    /* A match that would turn its track back is somebody else: the track ends, the person
     * may start their own. */
    for (t = 0; t < h->num_tracks; t++) {
        track_rec *tr = &c.tracks[t];
        if (tr->matched < 0 || tr->id < 0 || !turned_back(&c, t, tr->matched)) continue;
        c.people[tr->matched].track = -1;
        tr->matched = -1;
        tr->turned = 1;
    }

    /* Output: people that are not tracked are copied as they came. */
    for (i = 0; i < num_people; i++) {
        ids[i] = -1;
        if (i >= n || c.people[i].track < 0)
            memmove(&out_keypoints[(size_t)i * k * 3], &keypoints[(size_t)i * k * 3], sizeof(float) * 3 * (size_t)k);
    }
    h->matched = 0;
    for (t = 0; t < h->num_tracks; t++) {
        track_rec *tr = &c.tracks[t];
        if (tr->matched < 0) continue;
        /* colours before update_track: out_keypoints may be keypoints */
        if (image && c.people[tr->matched].pass == 1) remember_colours(&c, n, t, tr->matched);
        update_track(&c, t, tr->matched, &out_keypoints[(size_t)tr->matched * k * 3]);
        if (tr->id < 0 && tr->hits >= h->p.min_hits) {
            tr->id = h->next_id;
            h->next_id = h->next_id < 2147483647 ? h->next_id + 1 : 1;
            h->births++;
        }
        if (tr->id >= 0) h->matched++;
        ids[tr->matched] = tr->id;
    }
    /* Unmatched tracks: a tentative one goes, a confirmed one coasts until max_age. */
    for (t = h->num_tracks - 1; t >= 0; t--) {
        track_rec *tr = &c.tracks[t];
        if (tr->matched >= 0) {
            forget_old_parts(&c, t);
            continue;
        }
        if (tr->id < 0 || tr->turned || c.now - tr->last > h->p.max_age || gone_out(&c, t)) {
            if (tr->id >= 0) h->deaths++;
            remove_track(&c, t);
        } else {
            forget_old_parts(&c, t);
        }
    }
    /* Unmatched confident people start tentative tracks. */
    for (i = 0; i < n; i++) {
        if (c.people[i].pass != 1 || c.people[i].track >= 0) continue;
        if (h->num_tracks >= h->p.max_tracks) {
            rc |= OPP_WARN_TRACKS_FULL;
            continue;
        }
        t = new_track(&c, i);
        if (image) remember_colours(&c, n, t, i);
        update_track(&c, t, i, &out_keypoints[(size_t)i * k * 3]);
        if (h->p.min_hits <= 1) {
            c.tracks[t].id = h->next_id;
            h->next_id = h->next_id < 2147483647 ? h->next_id + 1 : 1;
            h->births++;
            h->matched++;
            ids[i] = c.tracks[t].id;
        }
    }
    h->last_time = timestamp;
    h->has_time = 1;
    h->frames++;
    return rc;
}
