using Lockstep.Configuration;

namespace Lockstep.Backends.Torch.Tests;

/// <summary>
/// One backend shared by the tests (creating one sets libtorch's process-wide thread count), on the device that the
/// environment configures: cpu by default, cuda under LOCKSTEP__TORCH__DEVICE=cuda (eng/gpu-check.sh).
/// </summary>
internal static class TorchTestSupport
{
    private static readonly Lazy<TorchBackend> _backend = new(() => new TorchBackend(Options.Torch));

    /// <summary>The configuration that environment variables give (LOCKSTEP__TORCH__DEVICE, …AllowTF32, …); no file.</summary>
    public static LockstepOptions Options => LockstepConfiguration.Bind(LockstepConfiguration.Build([]));

    public static TorchBackend Backend => _backend.Value;

    public static ITensor F64(this IBackend backend, double[] data, params int[] dims) => backend.Upload<double>(data, new Shape(dims));

    public static ITensor F32(this IBackend backend, float[] data, params int[] dims) => backend.Upload<float>(data, new Shape(dims));

    public static double[] Seq(int count, double start = 1, double step = 1) =>
        Enumerable.Range(0, count).Select(i => start + step * i).ToArray();

    public static double[] Random(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => random.NextDouble() * 2 - 1).ToArray();
    }

    /// <summary>Asserts element-wise agreement, naming the first index that differs and by how much.</summary>
    public static void Close(double[] expected, double[] actual, double tolerance = 1e-12, string what = "")
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            double scale = Math.Max(1, Math.Abs(expected[i]));
            bool same = double.IsNaN(expected[i]) ? double.IsNaN(actual[i]) : Math.Abs(expected[i] - actual[i]) <= tolerance * scale;
            Assert.True(same, $"{what}[{i}]: expected {expected[i]:R}, got {actual[i]:R} (difference {actual[i] - expected[i]:R})");
        }
    }
}
