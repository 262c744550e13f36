/*
 * track_stdin.c - the OpenPose-Plus tracker from C: read frames of people from stdin,
 * give each person an ID kept across frames (opp_track), print them.
 *
 *   cc -std=c99 track_stdin.c $(pkg-config --cflags --libs openpose_plus_paf) -o track_stdin
 *   ./track_stdin < frames.txt
 *
 * Input (text): a line "parts K", then per frame a line "frame T N" (T: timestamp in
 * seconds, N: people) followed by N lines "score x0 y0 c0 ... x(K-1) y(K-1) c(K-1)".
 * Output: per frame "frame T" and one line per person "id I x0 y0 c0 ...": the track ID
 * (-1: not yet born) and the smoothed keypoints (%.9g). Exit status: 0 success, 1 bad
 * input or a tracking error (its message on stderr), 2 usage.
 * The state is allocated once, sized by opp_tracker_size; frames need no allocation.
 */
#include <stdio.h>
#include <stdlib.h>

#include <openpose_plus_paf.h>

#define MAX_PEOPLE 64

int main(int argc, char **argv)
{
    opp_track_params params;
    size_t size;
    void *state;
    float *keypoints, *smoothed, scores[MAX_PEOPLE];
    int ids[MAX_PEOPLE], k, rc, n, i, j;
    double t;
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: track_stdin < frames.txt\n");
        return 2;
    }
    if (scanf(" parts %d", &k) != 1 || k < 1 || k > OPP_MAX_PARTS) {
        fprintf(stderr, "track_stdin: the input must start with \"parts K\"\n");
        return 1;
    }
    opp_default_track_params(&params);
    params.max_people = MAX_PEOPLE;
    if ((rc = opp_tracker_size(k, &params, &size)) != OPP_OK) {
        fprintf(stderr, "track_stdin: %s\n", opp_track_strerror(rc));
        return 1;
    }
    state = malloc(size); /* malloc's alignment is enough for OPP_TRACKER_ALIGN */
    keypoints = malloc(sizeof(float) * MAX_PEOPLE * (size_t)k * 3);
    smoothed = malloc(sizeof(float) * MAX_PEOPLE * (size_t)k * 3);
    if (!state || !keypoints || !smoothed) {
        fprintf(stderr, "track_stdin: out of memory\n");
        return 1;
    }
    if ((rc = opp_tracker_init(state, size, k, &params)) != OPP_OK) {
        fprintf(stderr, "track_stdin: %s\n", opp_track_strerror(rc));
        return 1;
    }
    while (scanf(" frame %lf %d", &t, &n) == 2) {
        if (n < 0 || n > MAX_PEOPLE) {
            fprintf(stderr, "track_stdin: %d people in a frame (at most %d)\n", n, MAX_PEOPLE);
            return 1;
        }
        for (i = 0; i < n; i++) {
            if (scanf("%f", &scores[i]) != 1) return fprintf(stderr, "track_stdin: short frame\n"), 1;
            for (j = 0; j < 3 * k; j++)
                if (scanf("%f", &keypoints[(size_t)i * k * 3 + j]) != 1)
                    return fprintf(stderr, "track_stdin: short frame\n"), 1;
        }
        rc = opp_track(state, t, keypoints, scores, n, smoothed, ids);
        if (rc < 0) {
            fprintf(stderr, "track_stdin: %s\n", opp_track_strerror(rc));
            return 1;
        }
        printf("frame %.9g\n", t);
        for (i = 0; i < n; i++) {
            printf("id %d", ids[i]);
            for (j = 0; j < 3 * k; j++) printf(" %.9g", smoothed[(size_t)i * k * 3 + j]);
            printf("\n");
        }
    }
    free(state);
    free(keypoints);
    free(smoothed);
    return 0;
}
