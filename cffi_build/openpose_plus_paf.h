/*
 * openpose_plus_paf.h - multi-person pose grouping from part heatmaps and Part
 * Affinity Fields (PAFs), in C99 with the C standard library only.
 *
 * The letters used in sizes:
 *   K  parts             skeleton->num_parts     (heatmap channels: K, or K + 1 with background)
 *   L  limbs             skeleton->num_limbs     (PAF channels: 2L)
 *   H  map height (rows) height
 *   W  map width         width
 *   M  peaks per part    params->max_peaks
 *   P  people out        params->max_people
 *   S  samples per limb  params->paf_samples
 *
 * Input is what the network writes: float32 planar CHW maps, read in place.
 *   heatmaps: K part channels (optionally followed by a background channel,
 *             which is ignored), each H x W, row-major.
 *   pafs:     2L channels of H x W; limb l reads x from channel limb_pafs[2l]
 *             and y from channel limb_pafs[2l + 1].
 * Coordinates are map coordinates: the centre of cell (column j, row i) is
 * (x, y) = (j, i). Non-finite map values (NaN, +-Inf) count as no evidence.
 *
 * The pipeline, each step a public function so callers can time or replace it:
 *   opp_find_peaks   local maxima per part, sub-pixel refined
 *   opp_score_limb   PAF line integral of every candidate pair of one limb
 *   opp_assign_limb  one-to-one matching of a limb's candidates
 *   opp_assemble     connections -> people
 *   opp_group        all of the above, using one workspace
 *
 * The library never allocates, keeps no global state and is reentrant: the
 * caller owns every buffer, including one workspace of opp_workspace_size()
 * bytes (any alignment) that can be reused for every frame. Every entry point
 * validates its arguments and returns an OPP_ERR_* code instead of crashing.
 * Return values: 0 = success, > 0 = success with warnings (a bit set of
 * OPP_WARN_*), < 0 = error (nothing useful was written).
 */
#ifndef OPENPOSE_PLUS_PAF_H
#define OPENPOSE_PLUS_PAF_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The region between the markers is also read by cffi (cffi_build/build_paf.py),
 * so it holds only declarations and #defines of integer constants. */
/* CFFI_BEGIN */

/* Version of this header; opp_version() returns the library's. ABI policy: an
 * incompatible change bumps MAJOR (the shared library's SONAME is
 * libopenpose_plus_paf.so.MAJOR), an addition bumps MINOR, a fix bumps PATCH. */
#define OPP_VERSION_MAJOR 0
#define OPP_VERSION_MINOR 7
#define OPP_VERSION_PATCH 0
#define OPP_VERSION 700 /* MAJOR * 10000 + MINOR * 100 + PATCH */

/* Status codes. Warnings are bits that can be combined; errors are negative. */
#define OPP_OK 0
#define OPP_WARN_PEAKS_TRUNCATED 1  /* a part had more than max_peaks peaks: kept the strongest */
#define OPP_WARN_PEOPLE_TRUNCATED 2 /* more than max_people people: kept the best scored */
#define OPP_ERR_NULL_POINTER (-1)   /* a required pointer is NULL */
#define OPP_ERR_SIZE (-2)           /* height or width outside 1..OPP_MAX_SIDE */
#define OPP_ERR_CHANNELS (-3)       /* channel count does not match the skeleton */
#define OPP_ERR_SKELETON (-4)       /* part/limb counts or indices out of range */
#define OPP_ERR_PARAMS (-5)         /* a field of opp_params is out of range */
#define OPP_ERR_WORKSPACE (-6)      /* workspace smaller than opp_workspace_size() */
#define OPP_ERR_ARGUMENT (-7)       /* another argument (limb index, counts, connections) */

/* Limits checked by the validation (generous: they only reject absurd input). */
#define OPP_MAX_SIDE 16384
#define OPP_MAX_PARTS 256
#define OPP_MAX_LIMBS 1024
#define OPP_MAX_PEAKS 1024
#define OPP_MAX_PEOPLE 65536
#define OPP_MAX_NMS_RADIUS 64
#define OPP_MAX_PAF_SAMPLES 1024

/* opp_params.assignment */
#define OPP_ASSIGN_GREEDY 0  /* best-scored candidate first, as OpenPose */
#define OPP_ASSIGN_OPTIMAL 1 /* maximum total score (Hungarian algorithm) */

/* opp_params.person_score */
#define OPP_SCORE_EVIDENCE 0 /* summed peak and connection scores / (K + L), as OpenPose sums */
#define OPP_SCORE_MEAN 1     /* their mean (the score before 0.2: a confident fragment outranks a whole person) */

/* The body model. Limb l joins part limb_parts[2l] to part limb_parts[2l + 1]
 * (distinct, in 0..num_parts-1); its PAF points from the first to the second.
 * People are assembled limb by limb in this order, so list limbs as a tree
 * walk from a central part (as COCO-18 does) and redundant limbs last. */
typedef struct opp_skeleton {
    int num_parts;         /* K, 1..OPP_MAX_PARTS */
    int num_limbs;         /* L, 0..OPP_MAX_LIMBS */
    const int *limb_parts; /* 2L part indices (may be NULL when L == 0) */
    const int *limb_pafs;  /* 2L PAF channel indices in 0..2L-1 (may be NULL when L == 0) */
} opp_skeleton;

/* Thresholds and capacities; opp_default_params() fills in the defaults. */
typedef struct opp_params {
    float peak_threshold;       /* a peak's heatmap value must exceed this, >= 0 (default 0.05) */
    int nms_radius;             /* a peak is the maximum of its (2r+1)^2 window, r in 0..OPP_MAX_NMS_RADIUS (1) */
    int max_peaks;              /* M, peaks kept per part, 1..OPP_MAX_PEAKS (64) */
    int paf_samples;            /* S, samples along a candidate limb, 2..OPP_MAX_PAF_SAMPLES (10) */
    float paf_sample_threshold; /* a sample counts if dot(PAF, limb direction) exceeds this (0.05) */
    float min_sample_fraction;  /* fraction of samples that must count, 0..1 (0.8) */
    float max_limb_length;      /* distance prior in map pixels, >= 0; 0 = height / 2 (0) */
    int assignment;             /* OPP_ASSIGN_GREEDY or OPP_ASSIGN_OPTIMAL (greedy) */
    int min_parts;              /* people with fewer parts are dropped, >= 1 (4) */
    float min_person_score;     /* people with a lower person score are dropped (0.05) */
    int max_people;             /* P, capacity of the output, 1..OPP_MAX_PEOPLE (64) */
    int person_score;           /* OPP_SCORE_EVIDENCE or OPP_SCORE_MEAN (evidence) */
    float peak_weight;          /* a candidate limb's score is weighed by its weaker peak's score (clamped to
                                 * 0..1) to this power, 0..1 (0.5); 0 = the PAF alone */
    float merge_radius;         /* two peaks of one part closer than this (map pixels, >= 0) may be one
                                 * part seen twice: their people merge (see opp_assemble); 0 = never (3) */
} opp_params;

/* A detected part: sub-pixel map coordinates and the heatmap value there. */
typedef struct opp_peak {
    float x;
    float y;
    float score;
} opp_peak;

/* A limb instance: peak a of the limb's first part joined to peak b of its
 * second part (indices into each part's peak list), with its limb score. */
typedef struct opp_connection {
    int a;
    int b;
    float score;
} opp_connection;

/* Library version, encoded as OPP_VERSION; compare with the header's. */
int opp_version(void);

/* A static, human-readable description of a status code (never NULL). */
const char *opp_strerror(int code);

/* Fills *params with the defaults listed in opp_params (a NULL params is ignored). */
void opp_default_params(opp_params *params);

/* Workspace bytes needed by opp_group, and enough for every step function, for
 * this skeleton, these params and height x width maps. Writes *size.
 * Errors: NULL_POINTER, SKELETON, PARAMS, SIZE. */
int opp_workspace_size(const opp_skeleton *skeleton, const opp_params *params, int height, int width,
                       size_t *size);

/* Step 1. Peaks of the first K heatmap channels.
 * peaks: K * M entries; part k's peaks go to peaks[k * M ...], strongest
 *        first, and their number to counts[k] (counts: K entries).
 * A peak is a finite value above peak_threshold that is the maximum of its
 * window (ties go to the first in row-major order); its position is refined by
 * a parabola through the log of the 3 values along x and along y (exact for a
 * Gaussian; a plain parabola when a value is not positive), offset within +-0.5.
 * Returns OPP_WARN_PEAKS_TRUNCATED when a part had more than max_peaks peaks.
 * Errors: NULL_POINTER, SIZE, CHANNELS (heatmap_channels not K or K + 1),
 * SKELETON, PARAMS. */
int opp_find_peaks(const float *heatmaps, int heatmap_channels, int height, int width,
                   const opp_skeleton *skeleton, const opp_params *params,
                   opp_peak *peaks, int *counts);

/* Step 2. Scores of every pair (peak i of part A, peak j of part B) of limb
 * `limb` = (A, B), written to scores[i * M + j] for i < counts[A],
 * j < counts[B] (the rest of the M x M matrix is not touched).
 * The score is the mean over S evenly spaced points from peak i to
 * peak j of dot(PAF, unit(j - i)), plus the distance prior
 * min(0, max_limb_length / distance - 1). A pair is a candidate if at least
 * min_sample_fraction of the samples exceed paf_sample_threshold and that is
 * positive; its score is then that times min(1, the smaller of its two
 * peaks' scores) ^ peak_weight (of a limb and a piece of it, both along the
 * PAF, the one between confident peaks scores higher). Otherwise its score
 * is 0.
 * peaks/counts: as written by opp_find_peaks (peaks must lie inside the map).
 * workspace: scratch of workspace_size bytes (opp_workspace_size() is enough).
 * Errors: NULL_POINTER, SIZE, CHANNELS (paf_channels != 2L), SKELETON, PARAMS,
 * WORKSPACE, ARGUMENT (limb out of range, a count outside 0..max_peaks, a peak
 * outside the map). */
int opp_score_limb(const float *pafs, int paf_channels, int height, int width,
                   const opp_skeleton *skeleton, const opp_params *params, int limb,
                   const opp_peak *peaks, const int *counts, float *scores,
                   void *workspace, size_t workspace_size);

/* Step 3. Matches the rows (count_a peaks) to the columns (count_b peaks) of a
 * score matrix from opp_score_limb (row stride M), each peak
 * used at most once, only pairs with a positive score, by params->assignment.
 * connections: room for min(count_a, count_b) entries; *num_connections is set.
 * workspace: scratch of workspace_size bytes (opp_workspace_size() is enough).
 * Errors: NULL_POINTER, PARAMS, WORKSPACE, ARGUMENT (a count outside 0..max_peaks). */
int opp_assign_limb(const opp_params *params, const float *scores, int count_a, int count_b,
                    opp_connection *connections, int *num_connections,
                    void *workspace, size_t workspace_size);

/* Step 4. People from the connections of every limb: connections holds
 * L * M entries, limb l's at [l * M ...], and connection_counts[l] (L
 * entries) of them are used. Limbs are taken in skeleton order; a
 * connection starts a person, attaches a part to the person holding its other
 * peak, or merges two people when they are one: no part in both, or every
 * part in both seen twice (two peaks within merge_radius; the stronger is
 * kept). A connection that would give a person a second peak of one part is
 * ignored. Then people that no connection joined are merged by the same rule
 * (a part found twice splits a person into fragments). With min_parts == 1
 * every peak left over becomes a one-part person.
 * A person's score is its evidence, the sum of its peak and connection scores
 * over K + L (OPP_SCORE_EVIDENCE: a whole person outranks a fragment), or
 * their mean (OPP_SCORE_MEAN); people with fewer than min_parts parts or a
 * score below min_person_score are dropped, and the best max_people are
 * written, best first:
 *   keypoints: P * K * 3 floats, (x, y, score) per part in map
 *              coordinates, (0, 0, 0) for a missing part;
 *   person_scores: P floats; *num_people: how many were written.
 * Returns OPP_WARN_PEOPLE_TRUNCATED when people were left out.
 * Errors: NULL_POINTER, SKELETON, PARAMS, WORKSPACE, ARGUMENT (a count or a
 * peak index out of range). */
int opp_assemble(const opp_skeleton *skeleton, const opp_params *params,
                 const opp_peak *peaks, const int *counts,
                 const opp_connection *connections, const int *connection_counts,
                 void *workspace, size_t workspace_size,
                 float *keypoints, float *person_scores, int *num_people);

/* All steps: heatmaps (heatmap_channels = K or K + 1) and pafs (paf_channels =
 * 2L, may be NULL when L == 0), both H x W, to people as written by
 * opp_assemble. workspace: at least opp_workspace_size() bytes, reused freely.
 * Returns the union of the steps' warnings, or the first error: NULL_POINTER,
 * SIZE, CHANNELS, SKELETON, PARAMS, WORKSPACE or ARGUMENT (from the step that failed). */
int opp_group(const float *heatmaps, int heatmap_channels,
              const float *pafs, int paf_channels, int height, int width,
              const opp_skeleton *skeleton, const opp_params *params,
              void *workspace, size_t workspace_size,
              float *keypoints, float *person_scores, int *num_people);

/* ---- Tracking (track.c): person IDs across frames and One Euro smoothing ----
 *
 * opp_track takes one frame's people (as opp_group writes them, in any
 * coordinates: image pixels in practice) and its timestamp, matches them to the
 * live tracks, and writes each person's track ID and smoothed keypoints.
 *   matching   by keypoint similarity (OKS-like): exp(-d^2 / 2(k s)^2) summed
 *              over the parts a person and a track share, s the larger of their sizes
 *              (bounding-box sides; a track's from the parts of its last match),
 *              divided by the person's part count (so a person partly hidden keeps
 *              their track), against each track's remembered keypoints moved by its
 *              velocity to this frame's time (the velocity low-passed from the median
 *              move of the parts a match shares with the last: a detection partly
 *              someone else's does not drag it; a part the person lacks now is
 *              remembered until max_age). k, the falloff, is kappa, or noise_falloff
 *              times the detections' noise where that is wider (up to 3 kappa): the
 *              median offset of a steady match's parts from its track's prediction, in
 *              sizes, measured as the tracker runs (a running median over matches, each
 *              moving it 2 % up or down). A real network's keypoints scatter more than
 *              ground-truth maps' (about 0.035 of a size against 0.01), and a falloff
 *              too tight for them loses people it should keep. Each pair is worth its
 *              similarity times the parts it explains (the sum); assignment picks the
 *              pairs: optimal, the most worth in all (Hungarian, as opp_assign_limb's), or
 *              greedy, the worthiest first. In passes as ByteTrack does for boxes: people scoring at least
 *              high_score against confirmed tracks, then against tentative ones, then
 *              people between low_score and high_score against the confirmed tracks
 *              left (stricter: weak_match_similarity, 0.6: in crowds the weak people
 *              are mostly pieces of someone, and a looser match took tracks from their
 *              owners; low_score = high_score turns this pass off). People below
 *              low_score are not tracked.
 *              Then confident people still without a track, who would start one, against
 *              the confirmed tracks lost for a while (not matched in the last frame),
 *              with the falloff widened by 1 + widen * seconds unseen (up to max_age):
 *              a lost person found again keeps their ID. A part far from where a track
 *              matched in the last frame expected it (3 k s) is not remembered: in a
 *              crowd, it is most likely someone else's.
 *   colours    with the frame (opp_track_image), each person's colour per part (three
 *              pixels 2 px apart along its row) is compared with the track's remembered one
 *              (a slow average of the parts of confident matches that lie clear of
 *              everyone else): likeness L in [0, 1], the mean over shared parts of
 *              exp(-d^2 / 2 (30 sqrt 3)^2), d the RGB distance (0.5 when fewer than 3
 *              parts are shared), and a pair's similarity and parts explained are both
 *              scaled by 1 - appearance + appearance L.
 *   life       an unmatched confident person starts a tentative track; it gets an ID
 *              (is born) once matched in min_hits frames, and a tentative track that
 *              misses a frame is dropped. A confirmed track unmatched for more than
 *              max_age seconds dies, and so does one whose predicted pose has left the
 *              frame (the middle of its box outside the frame set by
 *              opp_tracker_set_frame, else outside opp_track_image's image): whoever
 *              comes in there later is somebody else. A confirmed track at an edge of
 *              that frame (its predicted box within a tenth of its size of it), heading
 *              out through it (its velocity low-passed with a 0.3 s time constant)
 *              faster than turn_speed sizes per second, ends where its match would turn
 *              it back (its velocity against that heading at more than half its
 *              speed): the match is somebody coming in where its person went out (the
 *              two merge into one detection for a few frames; a walker does not turn
 *              round in a fifth of a second), and starts a track of its own. IDs count
 *              up from 1 and are never reused.
 *   smoothing  a One Euro filter per keypoint (Casiez et al. 2012: cutoff =
 *              min_cutoff + beta * speed, speed in track sizes per second, from a
 *              derivative low-passed at d_cutoff), time-based, reset when a track is
 *              born or a part reappears. With motion = 1 the filter predicts with the
 *              track's velocity, so a walking person's keypoints do not trail; that
 *              velocity is shrunk by v^2 / (v^2 + still_speed^2) (v in track sizes per
 *              second), so a standing person's (noise) does not shake the whole skeleton.
 *              Shown parts are kept inside the frame set by opp_tracker_set_frame.
 *              Visibility has hysteresis: a hidden part shows once its score exceeds
 *              part_on, a shown one stays while it exceeds part_off, and a shown part
 *              that goes missing is held (moved with the track) for part_hold seconds.
 * The state lives in caller memory of opp_tracker_size() bytes, aligned to
 * OPP_TRACKER_ALIGN, set up by opp_tracker_init(); it holds no pointers, so it may
 * be copied or moved between calls. No allocation, no global state; one state per
 * stream, one thread at a time. */

#define OPP_VERSION_TRACKING 1        /* this header declares the tracker */
#define OPP_WARN_TRACKS_FULL 4        /* max_tracks live tracks: a new person got none */
#define OPP_ERR_STATE (-8)            /* tracker state too small, misaligned or not initialised */
#define OPP_ERR_TIMESTAMP (-9)        /* timestamp not finite or not after the previous frame's */
#define OPP_MAX_TRACKS 1024           /* limit of max_tracks and of the tracker's max_people */
#define OPP_TRACKER_ALIGN 8           /* the state's address must be a multiple of this */

/* Tracking and smoothing parameters; opp_default_track_params() fills the defaults. */
typedef struct opp_track_params {
    int max_tracks;              /* tracks kept (tentative, confirmed, coasting), 1..OPP_MAX_TRACKS (64) */
    int max_people;              /* people per frame tracked (more: the rest get ID -1), 1..OPP_MAX_TRACKS (64) */
    float high_score;            /* people scoring at least this match first and may start tracks (0.2) */
    float low_score;             /* people below this are not tracked, <= high_score (0.05; = high_score: no weak pass) */
    float match_similarity;      /* least similarity of a first-pass match, 0..1 (0.2) */
    float weak_match_similarity; /* least similarity of a second-pass match, 0..1 (0.6) */
    float kappa;                 /* the least keypoint falloff, as a share of the track's size, 0.001..10 (0.1; see noise_falloff) */
    float part_threshold;        /* a part scoring above this is present (0) */
    int min_hits;                /* frames matched before a track gets an ID, 1..1000 (2) */
    float max_age;               /* seconds a confirmed track lives unmatched, (0, 3600] (2.0) */
    int smooth;                  /* 1: One Euro smoothing and visibility hysteresis; 0: keypoints as given (1) */
    int motion;                  /* 1: the filter predicts with the track's velocity; 0: plain One Euro (1) */
    float min_cutoff;            /* Hz, (0, 1000] (0.3) */
    float beta;                  /* cutoff Hz per track size per second, 0..1e6 (2) */
    float d_cutoff;              /* Hz, the derivative's and the track velocity's low-pass, (0, 1000] (1.0) */
    float part_on;               /* a hidden part shows above this score (0.2) */
    float part_off;              /* a shown part stays above this score, <= part_on (0.1) */
    float part_hold;             /* seconds a shown part is held when it goes missing, 0..max_age (0.5) */
    float widen;                 /* a lost track's falloff, to take a person back, grows by this share per second unseen, 0..1000 (1.5; 0: no such pass) */
    float still_speed;           /* track sizes/s: the filters' motion is the track's x v^2 / (v^2 + still_speed^2), 0..1000 (0.3; 0: whole) */
    int assignment;              /* pairs of each pass: OPP_ASSIGN_OPTIMAL (the most worth in all) or OPP_ASSIGN_GREEDY (optimal) */
    float appearance;            /* share of a pairing's worth given by colour (opp_track_image), 0..1 (0.8; 0: geometry alone) */
    float turn_speed;            /* track sizes/s: a track heading out of the frame faster than this ends where its match would turn it back, 0..1000 (0.25; 0: never) */
    float noise_falloff;         /* the falloff widens to this many times the detections' measured noise where that exceeds kappa (at most 3 kappa), 0..1000 (8; 0: kappa always) */
} opp_track_params;

/* Counters of a tracker (births and deaths count confirmed tracks). */
typedef struct opp_track_stats {
    int live;                 /* confirmed tracks alive (matched this frame or coasting) */
    int tentative;            /* tracks waiting for min_hits */
    int matched;              /* confirmed tracks matched in the last frame */
    long long births;         /* IDs handed out */
    long long deaths;         /* confirmed tracks gone (unmatched for more than max_age, or out of the frame) */
    long long frames;         /* frames tracked */
    float falloff;            /* the similarity's falloff now, as a share of a person's size: kappa, or wider for noisy detections (noise_falloff) */
} opp_track_stats;

/* Fills *params with the defaults listed in opp_track_params (a NULL params is ignored). */
void opp_default_track_params(opp_track_params *params);

/* Bytes of tracker state for num_parts parts (1..OPP_MAX_PARTS) and these params.
 * Errors: NULL_POINTER, SKELETON (num_parts), PARAMS. */
int opp_tracker_size(int num_parts, const opp_track_params *params, size_t *size);

/* Sets up (or resets) a tracker in state (state_size bytes, at least
 * opp_tracker_size(), aligned to OPP_TRACKER_ALIGN); params are copied in.
 * Errors: NULL_POINTER, SKELETON, PARAMS, STATE (too small or misaligned). */
int opp_tracker_init(void *state, size_t state_size, int num_parts, const opp_track_params *params);

/* The frame's size in the keypoints' pixels (width x height, each 1..1e6): smoothed parts
 * are then written within [0, width - 1] x [0, height - 1] (the filter's prediction, or a
 * held part moving with its track, may overshoot an edge). 0 x 0, as opp_tracker_init
 * leaves it: unbounded. Keypoints given unsmoothed (smooth = 0, untracked people) are
 * copied as they came. Errors: NULL_POINTER, STATE, ARGUMENT (another size). */
int opp_tracker_set_frame(void *state, float width, float height);

/* One frame. keypoints: num_people * num_parts * 3 floats (x, y, score; a part
 * scoring <= part_threshold, with a non-finite value or a coordinate beyond
 * +-1e6 is missing), scores: num_people person scores, timestamp: seconds,
 * after the previous frame's (any clock; gaps and variable rates are fine).
 * Writes ids[i] (the track's ID, or -1: not tracked or not yet born) and
 * out_keypoints (same layout: the smoothed keypoints of a tracked person, with
 * (0, 0, 0) for a hidden part; a person not matched to a track is copied as is;
 * out_keypoints may be keypoints itself). people beyond max_people get ID -1 and
 * are copied (OPP_WARN_PEOPLE_TRUNCATED); OPP_WARN_TRACKS_FULL when a person
 * could not start a track. num_people may be 0 (tracks age).
 * Errors (the state is unchanged): NULL_POINTER, STATE, TIMESTAMP, ARGUMENT
 * (num_people < 0). */
int opp_track(void *state, double timestamp, const float *keypoints, const float *scores, int num_people,
              float *out_keypoints, int *ids);

/* opp_track with the frame the keypoints are in: each person's colours, sampled at their
 * parts and along the way from each part to the person's middle, are compared with the
 * colours each track remembers (per part, a slow average updated when the track is
 * matched to a confident person who overlaps nobody), and a pairing's worth becomes
 * worth x (1 - appearance + appearance x colour likeness): when two people cross and
 * one detection is left, the track it looks like takes it. image: height rows of
 * width pixels, 3 bytes each (R, G, B; any fixed order), rows stride bytes apart
 * (stride >= 3 * width); keypoints in its pixel coordinates. A NULL image is
 * opp_track (no colours this frame). Errors as opp_track, and ARGUMENT for a size
 * outside 1..65535 or a stride below 3 * width. */
int opp_track_image(void *state, double timestamp, const float *keypoints, const float *scores, int num_people,
                    const unsigned char *image, int width, int height, int stride, float *out_keypoints, int *ids);

/* The tracker's counters. Errors: NULL_POINTER, STATE. */
int opp_tracker_stats(const void *state, opp_track_stats *stats);

/* opp_strerror() that also knows the tracker's codes (never NULL). */
const char *opp_track_strerror(int code);

/* CFFI_END */

#ifdef __cplusplus
}
#endif

#endif /* OPENPOSE_PLUS_PAF_H */
