using Lockstep.Backends.Managed.Kernels;
using Lockstep.Backends.Managed.Threading;

namespace Lockstep.Tests;

/// <summary>The weight gradients' sum of per-slot partials (Kernels/PartialSums.cs), split over the workers.</summary>
public sealed class PartialSumsTests
{
    /// <summary>
    /// Above and below the parallel threshold, with a length that leaves a partial block and sources read from an
    /// offset: each element is target + s₁ + s₂ + … added in slot order, the same bits on 1, 2 and 3 workers.
    /// </summary>
    [Theory]
    [InlineData(300_007, 3, 5)]
    [InlineData(1_000, 2, 0)]
    public void Add_SumsTheSourcesInSlotOrderOnAnyThreadCount(int length, int slots, int offset)
    {
        var rng = new Random(11);
        float[] Draw(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2e3 - 1e3)).ToArray();
        float[] start = Draw(length);
        var sources = Enumerable.Range(0, slots).Select(_ => Draw(offset + length)).ToArray();
        var expected = (float[])start.Clone();
        for (int e = 0; e < length; e++)
        for (int s = 1; s < slots; s++) expected[e] += sources[s][offset + e];

        foreach (int threads in new[] { 1, 2, 3 })
        {
            using var workers = new WorkerPool(threads);
            var target = (float[])start.Clone();
            PartialSums<float>.Add(workers, target, sources, 1, slots - 1, offset);
            Assert.True(expected.AsSpan().SequenceEqual(target), $"{threads} worker(s): the sum differs from slot-order addition");
        }
    }
}
