using static Lockstep.Backends.Torch.Tests.TorchTestSupport;

namespace Lockstep.Backends.Torch.Tests;

public class TorchActivationAndLossTests
{
    private static TorchBackend B => Backend;

    [Fact]
    public void Relu_ClampsNegativesAndKeepsNaN()
    {
        using var x = B.F32([-1, 0, 2, float.NaN, float.NegativeInfinity, float.PositiveInfinity], 6);

        using var y = B.Relu(x);

        var result = y.ToArray<float>();
        Assert.Equal([0f, 0, 2], result[..3]);
        Assert.True(float.IsNaN(result[3]), $"relu(NaN) = {result[3]}");
        Assert.Equal([0f, float.PositiveInfinity], result[4..]);
    }

    // Bitwise, as conformance checks ReLU: −0 gives +0 (IEEE maximum), and a NaN keeps its payload and sign.
    [Fact]
    public void Relu_IsBitExactForSignedZeroAndNaNPayloads()
    {
        long quietPayload = 0x7FF8_0000_0000_1234, negativeNaN = unchecked((long)0xFFF8_0000_0000_0001);
        double[] input = [-0d, -1e-300, BitConverter.Int64BitsToDouble(quietPayload), BitConverter.Int64BitsToDouble(negativeNaN), 0d];
        using var x = B.F64(input, input.Length);

        using var y = B.Relu(x);

        Assert.Equal([0L, 0L, quietPayload, negativeNaN, 0L], y.ToArray<double>().Select(BitConverter.DoubleToInt64Bits));
    }

    [Fact]
    public void ReluBackward_PassesDyOnlyWherePositive()
    {
        using var x = B.F64([-1, 0, 2, double.NaN, 3], 5);
        using var dy = B.F64([double.NaN, 5, 6, 7, double.PositiveInfinity], 5);

        using var dx = B.ReluBackward(dy, x);

        Assert.Equal([0d, 0, 6, 0, double.PositiveInfinity], dx.ToArray<double>());
    }

    [Fact]
    public void SoftmaxCrossEntropy_UniformScoresGiveLogClasses()
    {
        using var scores = B.F64(new double[6], 2, 3);

        using var loss = B.SoftmaxCrossEntropy(scores, [0, 2]);

        Assert.Equal(Math.Log(3), loss.Loss, 1e-15);
        double hit = (1.0 / 3 - 1) / 2, miss = 1.0 / 6;
        Close([hit, miss, miss, miss, miss, hit], loss.DScores.ToArray<double>(), 1e-15, "dScores");
    }

    [Fact]
    public void SoftmaxCrossEntropy_IsStableForLargeScores()
    {
        using var scores = B.F32([1000, 0, 0, 1000], 2, 2);

        using var loss = B.SoftmaxCrossEntropy(scores, [0, 0]);

        Assert.Equal(500, loss.Loss, 1e-3);
        Close([0, 0, -0.5, 0.5], loss.DScores.ToArray<float>().Select(v => (double)v).ToArray(), 1e-7, "dScores");
    }

    [Fact]
    public void SoftmaxCrossEntropy_ThrowsForLabelOutOfRange()
    {
        using var scores = B.F64(new double[6], 2, 3);

        var e = Assert.Throws<ArgumentException>(() => B.SoftmaxCrossEntropy(scores, [0, 3]));

        Assert.Contains("label 1 is 3, expected a class in [0, 3)", e.Message);
    }

    // The notes' example: three images, scores per class, correct classes 0, 1, 2: L = (2.9 + 0 + 12.9) / 3.
    [Fact]
    public void MulticlassSvm_MatchesTheNotesExample()
    {
        using var scores = B.F64([3.2, 5.1, -1.7, 1.3, 4.9, 2.0, 2.2, 2.5, -3.1], 3, 3);

        using var loss = B.MulticlassSvm(scores, [0, 1, 2]);

        Assert.Equal((2.9 + 0 + 12.9) / 3, loss.Loss, 1e-12);
        double t = 1.0 / 3;
        Close([-t, t, 0, 0, 0, 0, t, t, -2 * t], loss.DScores.ToArray<double>(), 1e-15, "dScores");
    }

    [Fact]
    public void MulticlassSvm_MarginExactlyZeroHasNoGradient()
    {
        using var scores = B.F32([1, 0], 1, 2);

        using var loss = B.MulticlassSvm(scores, [0]);

        Assert.Equal(0, loss.Loss);
        Assert.Equal([0f, 0], loss.DScores.ToArray<float>());
    }
}
