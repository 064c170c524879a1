using CsCheck;
using Lockstep.Layers;

namespace Lockstep.Tests;

/// <summary>
/// Random strings and numbers thrown at the parsers and spec constructors: each either succeeds or throws its
/// documented exception (ArgumentException, SpecException among them) — never anything else, never a hang.
/// CsCheck prints the shrunk failing input and the seed to replay it.
/// </summary>
public class FuzzTests
{
    private const int Iterations = 4000;
    private static readonly TimeSpan HangLimit = TimeSpan.FromMinutes(2);

    private static readonly string[] Tokens =
    [
        "INPUT", " ", "  ", "32", "x", "3", "->", "→", "-", ">", "CONV", "conv", "POOL", "AVGPOOL", "L2POOL", "FC", "RELU", "/S", "/P", "/D", "/G",
        "[", "]", "*", "0", "1", "2", "5", "7", "11", "224", "-1", "99999999999", "2147483647", "\t", "\n", "é", "\0", "Ω", ".", ",",
    ];

    /// <summary>Token soup: mostly grammar words and numbers, so that many strings get deep into the parser.</summary>
    private static readonly Gen<string> Specs =
        Gen.Int[0, Tokens.Length - 1].Array[0, 40].Select(ix => string.Concat(ix.Select(i => Tokens[i])));

    /// <summary>Valid prefixes followed by soup: exercises the layer and repetition rules rather than INPUT.</summary>
    private static readonly Gen<string> Tails = Specs.Select(s => "INPUT 16x16x3 -> " + s);

    private static void RunBounded(Action action)
    {
        var task = Task.Run(action);
        Assert.True(task.Wait(HangLimit), $"fuzzing did not finish within {HangLimit.TotalMinutes} minutes: a hang");
    }

    private static void ParseOrDocumentedError(string spec)
    {
        try
        {
            var def = NetworkSpec.Parse(spec);
            Assert.NotEmpty(def.Layers);
        }
        catch (SpecException e)
        {
            Assert.InRange(e.Column, 1, spec.Length + 1);
            Assert.Contains("^", e.Message, StringComparison.Ordinal);
        }
        catch (ArgumentException)
        {
        }
    }

    [Fact]
    public void NetworkSpec_Parse_TokenSoup_OnlyDocumentedErrors() =>
        RunBounded(() => Specs.Sample(ParseOrDocumentedError, iter: Iterations));

    [Fact]
    public void NetworkSpec_Parse_AfterValidInput_OnlyDocumentedErrors() =>
        RunBounded(() => Tails.Sample(ParseOrDocumentedError, iter: Iterations));

    [Fact]
    public void NetworkSpec_Parse_RandomCharacters_OnlyDocumentedErrors() =>
        RunBounded(() => Gen.String.Sample(ParseOrDocumentedError, iter: Iterations));

    [Fact]
    public void NamedNetworks_Get_RandomText_OnlyDocumentedErrors() =>
        RunBounded(() => Gen.OneOf(Specs, Gen.String).Sample(text =>
        {
            try
            {
                Assert.NotNull(NamedNetworks.Get(text));
            }
            catch (ArgumentException)
            {
            }
        }, iter: Iterations));

    private static readonly Gen<int> Sizes = Gen.OneOf(Gen.Int[-3, 12], Gen.Int, Gen.Const(int.MaxValue), Gen.Const(int.MinValue));

    [Fact]
    public void ConvSpec_RandomNumbers_ValidOrArgumentException() =>
        RunBounded(() => Gen.Select(Sizes.Array[9], Gen.Enum<SizeRule>()).Sample((v, rule) =>
        {
            ConvSpec spec;
            try
            {
                spec = new ConvSpec(v[0], v[1], v[2], v[3], Padding2d.Symmetric(v[4], v[5]), rule, "convF", v[7], v[8]);
            }
            catch (ArgumentException e)
            {
                Assert.Contains("convF", e.Message, StringComparison.Ordinal);
                return;
            }
            try
            {
                var (h, w) = spec.OutputSize(v[6], v[6]);
                Assert.True(h >= 1 && w >= 1, $"{spec} on {v[6]}: output {h}×{w}");
            }
            catch (ArgumentException e)
            {
                Assert.Contains("convF", e.Message, StringComparison.Ordinal);
            }
        }, iter: Iterations));

    [Fact]
    public void PoolSpec_RandomNumbers_ValidOrArgumentException() =>
        RunBounded(() => Gen.Select(Sizes.Array[9], Gen.Enum<SizeRule>(), Gen.Enum<PoolMode>(), Gen.Bool).Sample((v, rule, mode, includePad) =>
        {
            PoolSpec spec;
            try
            {
                spec = new PoolSpec(mode, v[0], v[1], v[2], v[3], v[4], v[5], rule, includePad, "poolF", v[7], v[8]);
            }
            catch (ArgumentException e)
            {
                Assert.Contains("poolF", e.Message, StringComparison.Ordinal);
                return;
            }
            try
            {
                var (h, w) = spec.OutputSize(v[6], v[6]);
                Assert.True(h >= 1 && w >= 1, $"{spec} on {v[6]}: output {h}×{w}");
            }
            catch (ArgumentException e)
            {
                Assert.Contains("poolF", e.Message, StringComparison.Ordinal);
            }
        }, iter: Iterations));
}
