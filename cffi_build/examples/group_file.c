/*
 * group_file.c - the OpenPose-Plus grouping core from C: read heatmaps and PAFs from a
 * map file, group them with opp_group, print the people.
 *
 *   cc -std=c99 group_file.c $(pkg-config --cflags --libs openpose_plus_paf) -o group_file
 *   ./group_file [--optimal] maps.oppm
 *
 * The map file (all integers int32 and all maps float32, little-endian):
 *   char  magic[8]       "OPPMAPS1"
 *   int32 num_parts      K
 *   int32 heat_channels  K or K + 1 (a trailing background channel is ignored)
 *   int32 num_limbs      L
 *   int32 height, width  H, W (map cells)
 *   int32 limb_parts[2L] limb l joins part limb_parts[2l] to part limb_parts[2l + 1]
 *   int32 limb_pafs[2L]  its PAF x, y channels
 *   float heatmaps[heat_channels][H][W]
 *   float pafs[2L][H][W]
 * and nothing after. Output (stdout), numbers printed with %.9g (float32 round-trips):
 *   people N
 *   person I score S            (N times, best first; then K lines:)
 *   part k x y score            (map coordinates; a missing part is 0 0 0)
 * Exit status: 0 success, 1 unreadable file or grouping error, 2 usage.
 * Parameters are opp_default_params() (the Python GroupParams() defaults), with
 * --optimal choosing OPP_ASSIGN_OPTIMAL.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openpose_plus_paf.h>

#define MAGIC "OPPMAPS1"

typedef struct {
    int num_parts, heat_channels, num_limbs, height, width;
    int *limb_parts, *limb_pafs;
    float *heatmaps, *pafs;
} map_file;

static char error_text[512];

static int fail(const char *what, const char *path)
{
    snprintf(error_text, sizeof error_text, "%s: %s", path, what);
    return -1;
}

/* Reads n little-endian 32-bit words into out (int32 or float32 storage). */
static int read_words(FILE *f, void *out, size_t n)
{
    unsigned char *bytes = (unsigned char *)out;
    size_t i;
    if (fread(bytes, 4, n, f) != n)
        return -1;
    for (i = 0; i < n; i++) {
        unsigned char *b = bytes + 4 * i;
        uint32_t w = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        memcpy(b, &w, 4); /* a no-op on little-endian hosts, a swap on big-endian ones */
    }
    return 0;
}

static void free_maps(map_file *m)
{
    free(m->limb_parts);
    free(m->limb_pafs);
    free(m->heatmaps);
    free(m->pafs);
    memset(m, 0, sizeof *m);
}

static int read_maps(const char *path, map_file *m)
{
    char magic[8];
    int32_t dims[5];
    size_t plane, limbs2;
    FILE *f;

    memset(m, 0, sizeof *m);
    f = fopen(path, "rb");
    if (!f)
        return fail(strerror(errno), path);
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, MAGIC, 8) != 0) {
        fclose(f);
        return fail("not a map file (no " MAGIC " magic)", path);
    }
    if (read_words(f, dims, 5) != 0) {
        fclose(f);
        return fail("truncated header", path);
    }
    m->num_parts = dims[0];
    m->heat_channels = dims[1];
    m->num_limbs = dims[2];
    m->height = dims[3];
    m->width = dims[4];
    /* Sizes are checked here only so the allocations below are sane; opp_group checks the rest. */
    if (m->num_parts < 1 || m->num_parts > OPP_MAX_PARTS || m->num_limbs < 0 || m->num_limbs > OPP_MAX_LIMBS
        || (m->heat_channels != m->num_parts && m->heat_channels != m->num_parts + 1)
        || m->height < 1 || m->height > OPP_MAX_SIDE || m->width < 1 || m->width > OPP_MAX_SIDE) {
        fclose(f);
        return fail("header out of range (parts, heatmap channels, limbs, height, width)", path);
    }
    plane = (size_t)m->height * (size_t)m->width;
    limbs2 = 2 * (size_t)m->num_limbs;
    m->limb_parts = (int *)malloc((limbs2 ? limbs2 : 1) * sizeof(int));
    m->limb_pafs = (int *)malloc((limbs2 ? limbs2 : 1) * sizeof(int));
    m->heatmaps = (float *)malloc((size_t)m->heat_channels * plane * sizeof(float));
    m->pafs = (float *)malloc((limbs2 ? limbs2 : 1) * plane * sizeof(float));
    if (!m->limb_parts || !m->limb_pafs || !m->heatmaps || !m->pafs) {
        fclose(f);
        free_maps(m);
        return fail("out of memory", path);
    }
    /* int is 32 bits on every platform this library targets (checked in main). */
    if (read_words(f, m->limb_parts, limbs2) != 0 || read_words(f, m->limb_pafs, limbs2) != 0) {
        fclose(f);
        free_maps(m);
        return fail("truncated limb table", path);
    }
    if (read_words(f, m->heatmaps, (size_t)m->heat_channels * plane) != 0) {
        fclose(f);
        free_maps(m);
        return fail("truncated heatmaps", path);
    }
    if (read_words(f, m->pafs, limbs2 * plane) != 0) {
        fclose(f);
        free_maps(m);
        return fail("truncated PAFs", path);
    }
    if (fgetc(f) != EOF) {
        fclose(f);
        free_maps(m);
        return fail("unexpected bytes after the PAFs", path);
    }
    fclose(f);
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int optimal = 0, usage_error = 0, i, k, rc, num_people = 0;
    map_file m;
    opp_skeleton skeleton;
    opp_params params;
    size_t workspace_size = 0;
    void *workspace;
    float *keypoints, *scores;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--optimal") == 0)
            optimal = 1;
        else if (!path && argv[i][0] != '-')
            path = argv[i];
        else
            usage_error = 1;
    }
    if (!path || usage_error) {
        fprintf(stderr, "usage: %s [--optimal] MAPS_FILE\n", argv[0]);
        return 2;
    }
    if (sizeof(int) != 4) {
        fprintf(stderr, "group_file: needs a 32-bit int\n");
        return 1;
    }
    /* A library older than the header this program was compiled with lacks what it expects. */
    if (opp_version() / 10000 != OPP_VERSION_MAJOR || opp_version() < OPP_VERSION) {
        fprintf(stderr, "group_file: library version %d, compiled against header %d\n", opp_version(),
                OPP_VERSION);
        return 1;
    }
    if (read_maps(path, &m) != 0) {
        fprintf(stderr, "group_file: %s\n", error_text);
        return 1;
    }

    skeleton.num_parts = m.num_parts;
    skeleton.num_limbs = m.num_limbs;
    skeleton.limb_parts = m.limb_parts;
    skeleton.limb_pafs = m.limb_pafs;
    opp_default_params(&params);
    if (optimal)
        params.assignment = OPP_ASSIGN_OPTIMAL;

    /* The workspace and outputs are made once; a video loop would reuse them every frame. */
    rc = opp_workspace_size(&skeleton, &params, m.height, m.width, &workspace_size);
    if (rc < 0) {
        fprintf(stderr, "group_file: %s: %s\n", path, opp_strerror(rc));
        free_maps(&m);
        return 1;
    }
    workspace = malloc(workspace_size ? workspace_size : 1);
    keypoints = (float *)malloc((size_t)params.max_people * (size_t)m.num_parts * 3 * sizeof(float));
    scores = (float *)malloc((size_t)params.max_people * sizeof(float));
    if (!workspace || !keypoints || !scores) {
        fprintf(stderr, "group_file: out of memory\n");
        rc = -1;
    } else {
        rc = opp_group(m.heatmaps, m.heat_channels, m.pafs, 2 * m.num_limbs, m.height, m.width, &skeleton,
                       &params, workspace, workspace_size, keypoints, scores, &num_people);
        if (rc < 0) {
            fprintf(stderr, "group_file: %s: %s\n", path, opp_strerror(rc));
        } else {
            if (rc > 0) /* warnings: still a result, but capacities overflowed */
                fprintf(stderr, "group_file: warning: %s\n", opp_strerror(rc));
            printf("people %d\n", num_people);
            for (i = 0; i < num_people; i++) {
                printf("person %d score %.9g\n", i, scores[i]);
                for (k = 0; k < m.num_parts; k++) {
                    const float *p = keypoints + ((size_t)i * m.num_parts + k) * 3;
                    printf("part %d %.9g %.9g %.9g\n", k, p[0], p[1], p[2]);
                }
            }
        }
    }
    free(workspace);
    free(keypoints);
    free(scores);
    free_maps(&m);
    return rc < 0 ? 1 : 0;
}
