using Lockstep.Layers;
using Xunit;

namespace Lockstep.Conformance;

/// <summary>
/// The notes' FC→CONV conversion on one backend: the converted network on a larger image gives, at every output
/// position (i, j), the original network's scores on the crop at (i·stride, j·stride), in float64 to ≤ 1e-12
/// relative. The networks' CONV layers do not pad, so a crop sees exactly the pixels the larger image has there.
/// Derive with one backend: <code>public sealed class MyFcToConv() : FcToConvConformance(new MyBackend());</code>
/// </summary>
public abstract class FcToConvConformance : IDisposable
{
    private const double Tolerance = 1e-12;

    protected FcToConvConformance(IBackend backend) => Backend = backend ?? throw new ArgumentNullException(nameof(backend));

    protected IBackend Backend { get; }

    /// <summary>The notes' example with reduced widths: 224 → 384 input, 7×7 → 12×12 volume before the FCs, 6×6 scores.</summary>
    [Fact]
    public void ConvertFcToConv_NotesExample_EqualsCropsAtStride32() =>
        Check("INPUT 224x224x3 -> [CONV2-4/S2 -> RELU -> POOL2]*2 -> CONV2-8/S2 -> RELU -> FC-16 -> RELU -> FC-16 -> RELU -> FC-10",
              larger: 384, stride: 32, grid: 6, seed: 11);

    [Fact]
    public void ConvertFcToConv_Small_EqualsCropsAtStride2() =>
        Check("INPUT 6x6x2 -> CONV3-3/P0 -> RELU -> L2POOL2 -> FC-5 -> RELU -> FC-4", larger: 10, stride: 2, grid: 3, seed: 12);

    [Fact]
    public void ConvertFcToConv_SameInput_GivesTheSameScores()
    {
        var definition = NetworkSpec.Parse("INPUT 8x8x1 -> CONV3-2 -> RELU -> AVGPOOL2 -> FC-6 -> RELU -> FC-3");
        using var net = definition.Build(Backend, DType.Float64, seed: 5);
        using var converted = net.ConvertFcToConv();
        using var x = Backend.Upload(HostData.Random(13, 2 * 64), definition.InputShape(2), DType.Float64);
        var expected = net.Forward(x).ToDoubles();
        var y = converted.Forward(x);
        Assert.Equal(Shape.Nchw(2, 3, 1, 1), y.Shape);
        AssertClose(y.ToDoubles(), expected, "same-size input");
    }

    [Fact]
    public void ConvertFcToConv_KeepsTheNumbers_ReshapingFcWeights()
    {
        using var net = NetworkSpec.Parse("INPUT 4x3x2 -> FC-5 -> RELU -> FC-2").Build(Backend, DType.Float32, seed: 3);
        using var converted = net.ConvertFcToConv();
        Assert.Equal(new Shape(5, 2, 3, 4), converted.Parameters[0].Shape);
        Assert.Equal(new Shape(2, 5, 1, 1), converted.Parameters[2].Shape);
        Assert.Same(Backend, converted.Backend);
        for (int i = 0; i < net.Parameters.Count; i++)
        {
            Assert.Equal(net.Parameters[i].Value.ToDoubles(), converted.Parameters[i].Value.ToDoubles());
        }
    }

    private void Check(string spec, int larger, int stride, int grid, int seed)
    {
        var definition = NetworkSpec.Parse(spec);
        var input = definition.Input;
        using var net = definition.Build(Backend, DType.Float64, seed);
        using var converted = net.ConvertFcToConv(larger, larger);

        int classes = definition.Classes;
        var image = HostData.Random(seed, (long)input.C * larger * larger);
        using var big = Backend.Upload(image, Shape.Nchw(1, input.C, larger, larger), DType.Float64);
        var scores = converted.Forward(big);
        Assert.Equal(Shape.Nchw(1, classes, grid, grid), scores.Shape);
        var gridScores = scores.ToDoubles();

        // Every crop at the total stride, as one batch through the original network.
        int n = grid * grid;
        var crops = new double[n * input.PerItem];
        long k = 0;
        for (int i = 0; i < grid; i++)
        {
            for (int j = 0; j < grid; j++)
            {
                for (int c = 0; c < input.C; c++)
                {
                    for (int h = 0; h < input.H; h++)
                    {
                        Array.Copy(image, ((long)c * larger + i * stride + h) * larger + j * stride, crops, k, input.W);
                        k += input.W;
                    }
                }
            }
        }
        using var batch = Backend.Upload(crops, definition.InputShape(n), DType.Float64);
        var cropScores = net.Forward(batch).ToDoubles();

        // The grid is [1, classes, i, j]; the crops' scores [i·grid + j, classes].
        var expected = new double[gridScores.Length];
        for (int crop = 0; crop < n; crop++)
        {
            for (int c = 0; c < classes; c++) expected[c * n + crop] = cropScores[crop * classes + c];
        }
        AssertClose(gridScores, expected, $"{spec} on {larger}×{larger} (seed {seed})");
    }

    private static void AssertClose(double[] actual, double[] expected, string what)
    {
        var agreement = Agreement.Of(actual, expected, DType.Float64);
        Assert.True(agreement.RelativeError <= Tolerance,
            $"{what}: converted network vs crops: relative error {agreement.RelativeError:E3} > {Tolerance:E0} " +
            $"(worst at {agreement.WorstIndex}: {agreement.Candidate:R} vs {agreement.Reference:R})");
    }

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
        if (disposing) Backend.Dispose();
    }
}
