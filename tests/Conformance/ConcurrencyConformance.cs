using Lockstep.Layers;
using Xunit;

namespace Lockstep.Conformance;

/// <summary>
/// Threads: a backend serves several networks on several threads at once, each giving exactly what it gives alone;
/// one network shared between threads is rejected with a clear error, never corrupted silently.
/// Derive with a factory: <code>public sealed class MyThreads() : ConcurrencyConformance(() => new MyBackend());</code>
/// </summary>
public abstract class ConcurrencyConformance(Func<IBackend> create)
{
    private const int Threads = 4;
    private const int Steps = 200;
    private const int Batch = 4;

    private static NetworkDefinition Small() => NetworkSpec.Parse("INPUT 8x8x2 -> CONV3-4 -> RELU -> POOL2 -> FC-5", "small");

    /// <summary>Trains one network for <see cref="Steps"/> steps on data seeded by <paramref name="worker"/>; returns its parameters.</summary>
    private static double[][] Train(IBackend backend, int worker)
    {
        var def = Small();
        using var net = def.Build(backend, DType.Float32, seed: 1);
        var shape = def.InputShape(Batch);
        using var x = backend.Upload(HostData.Random(100 + worker, shape.Count), shape, DType.Float32);
        var labels = HostData.Labels(200 + worker, Batch, def.Classes);
        for (int i = 0; i < Steps; i++) net.TrainStep(x, labels, learningRate: 0.01, momentum: 0.9);
        return net.Parameters.Select(p => p.Value.ToDoubles()).ToArray();
    }

    [Fact]
    public void SeparateNetworks_OnSeveralThreads_MatchSingleThreadedRun()
    {
        using var backend = create();
        var alone = Enumerable.Range(0, Threads).Select(w => Train(backend, w)).ToArray();
        var together = new double[Threads][][];
        Parallel.For(0, Threads, new ParallelOptions { MaxDegreeOfParallelism = Threads }, w => together[w] = Train(backend, w));
        for (int w = 0; w < Threads; w++)
        for (int p = 0; p < alone[w].Length; p++)
        {
            var agreement = Agreement.Of(together[w][p], alone[w][p], DType.Float32);
            Assert.True(agreement.IsExact,
                $"{backend.Name}: worker {w}, parameter {p}: {Threads} threads × {Steps} steps differ from the single-threaded run: " +
                agreement.Describe(new Shape(alone[w][p].Length)));
        }
    }

    /// <summary>Holds the first caller inside Relu until released, so that a second thread meets a network in use.</summary>
    private sealed class GateBackend(IBackend inner) : DelegatingBackend(inner)
    {
        public ManualResetEventSlim Entered { get; } = new();
        public ManualResetEventSlim Release { get; } = new();

        public override ITensor Relu(ITensor x)
        {
            Hold();
            return base.Relu(x);
        }

        public override void Relu(ITensor x, ITensor destination)
        {
            Hold();
            base.Relu(x, destination);
        }

        private void Hold()
        {
            Entered.Set();
            Release.Wait(TimeSpan.FromSeconds(30));
        }
    }

    [Fact]
    public void SharedNetwork_SecondThread_IsRejectedWithClearError()
    {
        using var backend = new GateBackend(create());
        var def = Small();
        using var net = def.Build(backend, DType.Float32, seed: 1);
        var shape = def.InputShape(Batch);
        using var x = backend.Upload(HostData.Random(1, shape.Count), shape, DType.Float32);
        var labels = HostData.Labels(2, Batch, def.Classes);
        double firstLoss = double.NaN;
        var first = new Thread(() => firstLoss = net.TrainStep(x, labels, 0.01));
        first.Start();
        Assert.True(backend.Entered.Wait(TimeSpan.FromSeconds(30)), "the first thread never reached the network's RELU");
        var e = Assert.Throws<InvalidOperationException>(() => net.Forward(x));
        Assert.Contains("not thread-safe", e.Message, StringComparison.Ordinal);
        Assert.Contains("small", e.Message, StringComparison.Ordinal);
        backend.Release.Set();
        Assert.True(first.Join(TimeSpan.FromSeconds(60)), "the first thread did not finish its step");
        Assert.True(double.IsFinite(firstLoss), $"the first thread's step was disturbed: loss {firstLoss}");
        // Once the first thread is done, the network is free again, for any thread.
        double again = double.NaN;
        var second = new Thread(() => again = net.TrainStep(x, labels, 0.01));
        second.Start();
        Assert.True(second.Join(TimeSpan.FromSeconds(60)) && double.IsFinite(again), $"a later thread could not use the free network: loss {again}");
    }
}
