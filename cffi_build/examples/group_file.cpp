// group_file.cpp - the OpenPose-Plus grouping core from C++: the same program as
// group_file.c (same map file, same output, byte for byte), written the C++ way: the
// header is included as is (it has extern "C" guards), buffers are std::vectors and
// errors are exceptions.
//
//   c++ -std=c++11 group_file.cpp $(pkg-config --cflags --libs openpose_plus_paf) -o group_file_cpp
//   ./group_file_cpp [--optimal] maps.oppm
//
// The map file format and the output format are described in group_file.c.
#include <openpose_plus_paf.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct MapFile {
    int num_parts = 0, heat_channels = 0, num_limbs = 0, height = 0, width = 0;
    std::vector<int> limb_parts, limb_pafs;
    std::vector<float> heatmaps, pafs;
};

// n little-endian 32-bit words into T (int or float), whatever the host's byte order.
template <typename T>
std::vector<T> read_words(std::ifstream &in, std::size_t n, const std::string &what)
{
    static_assert(sizeof(T) == 4, "32-bit words only");
    std::vector<unsigned char> bytes(4 * n);
    if (n && !in.read(reinterpret_cast<char *>(bytes.data()), static_cast<std::streamsize>(bytes.size())))
        throw std::runtime_error("truncated " + what);
    std::vector<T> out(n);
    for (std::size_t i = 0; i < n; ++i) {
        const unsigned char *b = &bytes[4 * i];
        std::uint32_t w = std::uint32_t(b[0]) | std::uint32_t(b[1]) << 8 | std::uint32_t(b[2]) << 16 |
                          std::uint32_t(b[3]) << 24;
        std::memcpy(&out[i], &w, 4);
    }
    return out;
}

MapFile read_maps(const std::string &path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw std::runtime_error(std::strerror(errno));
    char magic[8];
    if (!in.read(magic, 8) || std::memcmp(magic, "OPPMAPS1", 8) != 0)
        throw std::runtime_error("not a map file (no OPPMAPS1 magic)");
    std::vector<int> dims = read_words<int>(in, 5, "header");
    MapFile m;
    m.num_parts = dims[0];
    m.heat_channels = dims[1];
    m.num_limbs = dims[2];
    m.height = dims[3];
    m.width = dims[4];
    // Checked here only so the allocations below are sane; opp_group checks the rest.
    if (m.num_parts < 1 || m.num_parts > OPP_MAX_PARTS || m.num_limbs < 0 || m.num_limbs > OPP_MAX_LIMBS ||
        (m.heat_channels != m.num_parts && m.heat_channels != m.num_parts + 1) || m.height < 1 ||
        m.height > OPP_MAX_SIDE || m.width < 1 || m.width > OPP_MAX_SIDE)
        throw std::runtime_error("header out of range (parts, heatmap channels, limbs, height, width)");
    const std::size_t plane = std::size_t(m.height) * std::size_t(m.width);
    const std::size_t limbs2 = 2 * std::size_t(m.num_limbs);
    m.limb_parts = read_words<int>(in, limbs2, "limb table");
    m.limb_pafs = read_words<int>(in, limbs2, "limb table");
    m.heatmaps = read_words<float>(in, std::size_t(m.heat_channels) * plane, "heatmaps");
    m.pafs = read_words<float>(in, limbs2 * plane, "PAFs");
    if (in.peek() != std::char_traits<char>::eof())
        throw std::runtime_error("unexpected bytes after the PAFs");
    return m;
}

// Turns a C status into an exception; warnings (> 0) go to stderr and are returned.
int check(int rc, const std::string &where)
{
    if (rc < 0)
        throw std::runtime_error(where + ": " + opp_strerror(rc));
    if (rc > 0)
        std::fprintf(stderr, "group_file: warning: %s\n", opp_strerror(rc));
    return rc;
}

}  // namespace

int main(int argc, char **argv)
{
    std::string path;
    bool optimal = false, usage_error = false;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--optimal")
            optimal = true;
        else if (path.empty() && !arg.empty() && arg[0] != '-')
            path = arg;
        else
            usage_error = true;
    }
    if (path.empty() || usage_error) {
        std::fprintf(stderr, "usage: %s [--optimal] MAPS_FILE\n", argv[0]);
        return 2;
    }
    if (opp_version() / 10000 != OPP_VERSION_MAJOR || opp_version() < OPP_VERSION) {
        std::fprintf(stderr, "group_file: library version %d, compiled against header %d\n", opp_version(),
                     OPP_VERSION);
        return 1;
    }
    try {
        MapFile m;
        try {
            m = read_maps(path);
        } catch (const std::exception &e) {
            throw std::runtime_error(path + ": " + e.what());
        }
        opp_skeleton skeleton;
        skeleton.num_parts = m.num_parts;
        skeleton.num_limbs = m.num_limbs;
        skeleton.limb_parts = m.limb_parts.empty() ? nullptr : m.limb_parts.data();
        skeleton.limb_pafs = m.limb_pafs.empty() ? nullptr : m.limb_pafs.data();
        opp_params params;
        opp_default_params(&params);
        if (optimal)
            params.assignment = OPP_ASSIGN_OPTIMAL;

        // Made once; a video loop would reuse them for every frame.
        std::size_t workspace_size = 0;
        check(opp_workspace_size(&skeleton, &params, m.height, m.width, &workspace_size), path);
        std::vector<unsigned char> workspace(workspace_size ? workspace_size : 1);
        std::vector<float> keypoints(std::size_t(params.max_people) * std::size_t(m.num_parts) * 3);
        std::vector<float> scores(static_cast<std::size_t>(params.max_people));
        int num_people = 0;
        check(opp_group(m.heatmaps.data(), m.heat_channels, m.pafs.empty() ? nullptr : m.pafs.data(),
                        2 * m.num_limbs, m.height, m.width, &skeleton, &params, workspace.data(),
                        workspace.size(), keypoints.data(), scores.data(), &num_people),
              path);

        std::printf("people %d\n", num_people);
        for (int i = 0; i < num_people; ++i) {
            std::printf("person %d score %.9g\n", i, scores[std::size_t(i)]);
            for (int k = 0; k < m.num_parts; ++k) {
                const float *p = &keypoints[(std::size_t(i) * std::size_t(m.num_parts) + std::size_t(k)) * 3];
                std::printf("part %d %.9g %.9g %.9g\n", k, p[0], p[1], p[2]);
            }
        }
    } catch (const std::exception &e) {
        std::fprintf(stderr, "group_file: %s\n", e.what());
        return 1;
    }
    return 0;
}
