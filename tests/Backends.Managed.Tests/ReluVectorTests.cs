using System.Numerics.Tensors;
using Lockstep.Backends.Managed;
using Lockstep.Backends.Managed.Gemm;

namespace Lockstep.Tests;

/// <summary>
/// RELU's vector loops (Kernels/Activations.cs) against TensorPrimitives.Max(x, 0), bit for bit, on the values where
/// a maximum can differ: NaNs with payloads and signs, −0 and +0, infinities, subnormals — in the vector body and the
/// tail, and on a tensor large enough to take the non-temporal stores (from 16 MiB, on 2 workers).
/// </summary>
public sealed class ReluVectorTests
{
    private static float[] Specials(int length, int seed)
    {
        var rng = new Random(seed);
        float[] special =
        [
            float.NaN, -float.NaN, BitConverter.Int32BitsToSingle(0x7FC0_1234), BitConverter.Int32BitsToSingle(unchecked((int)0xFFC0_4321)),
            0f, -0f, float.PositiveInfinity, float.NegativeInfinity, float.Epsilon, -float.Epsilon, 1e-40f, -1e-40f,
        ];
        var x = new float[length];
        for (int i = 0; i < length; i++) x[i] = rng.Next(4) == 0 ? special[rng.Next(special.Length)] : (float)(rng.NextDouble() - 0.5);
        return x;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(15)]
    [InlineData(16)]
    [InlineData(1000)]
    [InlineData(65_537)]
    public void Relu_SameBitsAsTensorPrimitivesMax(int length)
    {
        float[] x = Specials(length, length);
        var expected = new float[length];
        TensorPrimitives.Max(x, 0f, expected);
        using var backend = new ManagedBackend(new ManagedGemmProvider(1), threads: 2);
        using var t = backend.Upload<float>(x, new Shape(length));
        using var y = backend.Relu(t);
        AssertSameBits(expected, y.ToArray<float>(), $"RELU of {length} elements");

        double[] xd = Array.ConvertAll(x, v => (double)v);
        var expectedD = new double[length];
        TensorPrimitives.Max(xd, 0d, expectedD);
        using var td = backend.Upload<double>(xd, new Shape(length));
        using var yd = backend.Relu(td);
        var actualD = yd.ToArray<double>();
        for (int i = 0; i < length; i++)
        {
            Assert.True(BitConverter.DoubleToInt64Bits(expectedD[i]) == BitConverter.DoubleToInt64Bits(actualD[i]),
                $"RELU (float64) of {length} elements, element {i}: {actualD[i]} where TensorPrimitives.Max gives {expectedD[i]} (x = {xd[i]})");
        }
    }

    /// <summary>17 MiB of floats: the job's chunks stream their stores from each 64-byte boundary on; in place too.</summary>
    [Fact]
    public void Relu_LargeTensorStreams_SameBits()
    {
        int length = (17 << 20) / sizeof(float) + 5;
        float[] x = Specials(length, 7);
        var expected = new float[length];
        TensorPrimitives.Max(x, 0f, expected);
        using var backend = new ManagedBackend(new ManagedGemmProvider(1), threads: 2);
        using var t = backend.Upload<float>(x, new Shape(length));
        using (var y = backend.Relu(t)) AssertSameBits(expected, y.ToArray<float>(), "RELU of 17 MiB");
        backend.Relu(t, t);
        AssertSameBits(expected, t.ToArray<float>(), "RELU of 17 MiB in place");
    }

    private static void AssertSameBits(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            int e = BitConverter.SingleToInt32Bits(expected[i]), a = BitConverter.SingleToInt32Bits(actual[i]);
            Assert.True(e == a, $"{what}, element {i}: 0x{a:X8} where TensorPrimitives.Max gives 0x{e:X8}");
        }
    }
}
