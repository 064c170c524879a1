using System.Globalization;
using System.Text;

namespace Lockstep.Layers;

/// <summary>
/// The notes' notation for a network, made executable:
/// <c>INPUT 32x32x3 -> [CONV3-16 -> RELU -> POOL2]*2 -> FC-10</c>.
/// <code>
/// spec   := 'INPUT' W 'x' H 'x' D ('->' item)+          the input volume W×H×D, as the notes write it
/// item   := layer | '[' item ('->' item)* ']' '*' N     repetition, nestable
/// layer  := CONV F '-' K ['/S' s] ['/P' p] ['/D' d] ['/G' g]
///                                                       stride 1, dilation 1, one group and padding d·(F − 1)/2
///                                                       unless given (options in any order)
///         | POOL F ['/S' s] ['/P' p]                    max pooling, stride F unless given (AVGPOOL, L2POOL likewise)
///         | FC '-' n | RELU
/// </code>
/// Keywords are case-insensitive; '→' may stand for '->'. Every error, in the syntax or in the geometry,
/// is a <see cref="SpecException"/> that points at the column where it was found.
/// </summary>
public static class NetworkSpec
{
    /// <summary>The name of a definition parsed from a spec given without one.</summary>
    public const string DefaultName = "spec";

    /// <summary>Parses <paramref name="spec"/> into a definition named <paramref name="name"/>, its geometry checked.</summary>
    public static NetworkDefinition Parse(string spec, string name = DefaultName)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var parser = new Parser(spec);
        var (channels, height, width, layers) = parser.Parse();
        CheckGeometry(spec, name, channels, height, width, layers);
        return new NetworkDefinition(name, channels, height, width, layers.Select(l => l.Definition)) { Spec = spec };
    }

    /// <summary>True when <paramref name="text"/> looks like a spec (starts with INPUT) rather than a network's name.</summary>
    public static bool IsSpec(string text) =>
        text is not null && text.TrimStart().StartsWith("INPUT", StringComparison.OrdinalIgnoreCase);

    /// <summary>Writes a definition back in the grammar (repetitions unrolled), e.g. for a converted or built network.</summary>
    public static string Format(NetworkDefinition definition)
    {
        ArgumentNullException.ThrowIfNull(definition);
        var text = new StringBuilder(string.Create(CultureInfo.InvariantCulture,
            $"INPUT {definition.Input.W}x{definition.Input.H}x{definition.Input.C}"));
        foreach (var layer in definition.Layers) text.Append(" -> ").Append(Format(layer));
        return text.ToString();
    }

    private static string Format(LayerDefinition layer) => layer switch
    {
        ConvDefinition c when c.Spec.KernelH == c.Spec.KernelW && c.Spec.StrideH == c.Spec.StrideW && c.Spec.PadH == c.Spec.PadW
                              && c.Spec.Padding.IsSymmetric && c.Spec.DilationH == c.Spec.DilationW =>
            $"CONV{c.Spec.KernelH}-{c.Filters}" + (c.Spec.StrideH != 1 ? $"/S{c.Spec.StrideH}" : "") +
            (c.Spec.PadH != c.Spec.DilationH * (c.Spec.KernelH - 1) / 2 ? $"/P{c.Spec.PadH}" : "") +
            (c.Spec.DilationH != 1 ? $"/D{c.Spec.DilationH}" : "") + (c.Spec.Groups != 1 ? $"/G{c.Spec.Groups}" : ""),
        PoolDefinition p when p.Spec.KernelH == p.Spec.KernelW && p.Spec.StrideH == p.Spec.StrideW && p.Spec.PadH == p.Spec.PadW =>
            (p.Spec.Mode switch { PoolMode.Max => "POOL", PoolMode.Average => "AVGPOOL", _ => "L2POOL" }) + p.Spec.KernelH +
            (p.Spec.StrideH != p.Spec.KernelH ? $"/S{p.Spec.StrideH}" : "") + (p.Spec.PadH != 0 ? $"/P{p.Spec.PadH}" : ""),
        FcDefinition f => $"FC-{f.Outputs}",
        ReluDefinition => "RELU",
        _ => throw new ArgumentException($"{layer.Kind}: {layer} has no form in the spec grammar (non-square kernel, stride, padding or dilation, or padding that differs per side)"),
    };

    // Each layer's shape in turn, so that a geometry error points at the layer's token.
    private static void CheckGeometry(string spec, string name, int channels, int height, int width, List<ParsedLayer> layers)
    {
        var shape = Shape.Nchw(1, channels, height, width);
        var counts = new Dictionary<string, int>();
        foreach (var layer in layers)
        {
            string kind = layer.Definition.Kind;
            counts[kind] = counts.GetValueOrDefault(kind) + 1;
            string layerName = kind.ToLowerInvariant() + counts[kind];   // as NetworkDefinition names it
            try
            {
                shape = layer.Definition.OutputShape(shape, layerName);
            }
            catch (ArgumentException e)
            {
                throw new SpecException(spec, layer.Column, name == DefaultName ? e.Message : $"{name}: {e.Message}");
            }
        }
    }

    private sealed record ParsedLayer(LayerDefinition Definition, int Column);

    /// <summary>A recursive-descent parser over the spec's characters; columns are 1-based.</summary>
    private sealed class Parser(string text)
    {
        private const int MaxLayers = 100_000;
        private int _pos;

        public (int Channels, int Height, int Width, List<ParsedLayer> Layers) Parse()
        {
            SkipSpace();
            if (!TryKeyword("INPUT")) throw Error("a spec starts with INPUT W×H×D, e.g. 'INPUT 32x32x3 -> CONV3-16 -> FC-10'");
            SkipSpace();
            bool bracket = TryChar('[');
            SkipSpace();
            int width = Number("the input width W");
            Expect('x', "'x' between the input's width and height (W×H×D, e.g. 32x32x3)");
            int height = Number("the input height H");
            Expect('x', "'x' between the input's height and depth (W×H×D, e.g. 32x32x3)");
            int depth = Number("the input depth D");
            SkipSpace();
            if (bracket) Expect(']', "']' to close the input volume");

            var layers = new List<ParsedLayer>();
            SkipSpace();
            if (AtEnd) throw Error("the spec has no layers: continue with '-> CONV3-16 -> ...'");
            while (!AtEnd)
            {
                Arrow();
                Item(layers, depth: 0);
                SkipSpace();
            }
            return (depth, height, width, layers);
        }

        private bool AtEnd => _pos >= text.Length;

        private int Column => _pos + 1;

        private SpecException Error(string reason) => new(text, Column, reason);

        private SpecException Error(int column, string reason) => new(text, column, reason);

        private void SkipSpace()
        {
            while (!AtEnd && char.IsWhiteSpace(text[_pos])) _pos++;
        }

        private void Arrow()
        {
            SkipSpace();
            if (TryString("->") || TryChar('→'))
            {
                SkipSpace();
                return;
            }
            throw Error(AtEnd ? "the spec ends here; expected '->' and a layer" : $"expected '->' between layers, found '{Rest()}'");
        }

        private void Item(List<ParsedLayer> layers, int depth)
        {
            if (AtEnd) throw Error("expected a layer after '->': CONV, POOL, AVGPOOL, L2POOL, FC, RELU or '[ ... ]*N'");
            if (text[_pos] != '[')
            {
                layers.Add(Layer());
                return;
            }

            int open = Column;
            _pos++;
            SkipSpace();
            var group = new List<ParsedLayer>();
            Item(group, depth + 1);
            SkipSpace();
            while (!AtEnd && text[_pos] != ']')
            {
                Arrow();
                Item(group, depth + 1);
                SkipSpace();
            }
            if (AtEnd) throw Error(open, "this '[' is never closed: expected ']*N'");
            _pos++;
            SkipSpace();
            if (!TryChar('*')) throw Error("expected '*N' after ']', the number of repetitions, e.g. [CONV3-16 -> RELU]*2");
            SkipSpace();
            int times = Number("the number of repetitions N");
            if ((long)layers.Count + (long)group.Count * times > MaxLayers)
            {
                throw Error(open, $"the repetition makes more than {MaxLayers:N0} layers");
            }
            for (int i = 0; i < times; i++) layers.AddRange(group);
        }

        private ParsedLayer Layer()
        {
            int column = Column;
            if (TryKeyword("CONV"))
            {
                int f = Number("the filter size F (CONV<F>-<K>, e.g. CONV3-16)");
                Expect('-', "'-' and the number of filters K (CONV<F>-<K>, e.g. CONV3-16)");
                int k = Number("the number of filters K (CONV<F>-<K>, e.g. CONV3-16)");
                var (s, p, d, g) = Options(allowed: "/S<stride>, /P<padding>, /D<dilation> or /G<groups>", convolution: true);
                int stride = s ?? 1, dilation = d ?? 1, padding = p ?? dilation * (f - 1) / 2;
                return Build(column, () => new ConvDefinition(k,
                    new ConvSpec(f, f, stride, stride, padding, padding, dilationH: dilation, dilationW: dilation, groups: g ?? 1)));
            }
            PoolMode? mode = TryKeyword("AVGPOOL") ? PoolMode.Average
                : TryKeyword("L2POOL") ? PoolMode.L2
                : TryKeyword("POOL") ? PoolMode.Max
                : null;
            if (mode is { } m)
            {
                int f = Number("the window size F (POOL<F>, e.g. POOL2)");
                var (s, p, _, _) = Options(allowed: "/S<stride> or /P<padding>", convolution: false);
                return Build(column, () => new PoolDefinition(PoolSpec.Square(m, f, s ?? f, p ?? 0)));
            }
            if (TryKeyword("FC"))
            {
                Expect('-', "'-' and the number of outputs (FC-<n>, e.g. FC-10)");
                int n = Number("the number of outputs n (FC-<n>, e.g. FC-10)");
                return Build(column, () => new FcDefinition(n));
            }
            if (TryKeyword("RELU")) return new ParsedLayer(new ReluDefinition(), column);
            throw Error($"unknown layer '{Word()}': expected CONV<F>-<K>, POOL<F>, AVGPOOL<F>, L2POOL<F>, FC-<n>, RELU or '[ ... ]*N'");
        }

        // The hyperparameters' own checks (stride ≥ 1, padding < F, ...) point at the layer.
        private ParsedLayer Build(int column, Func<LayerDefinition> make)
        {
            try
            {
                return new ParsedLayer(make(), column);
            }
            catch (ArgumentException e)
            {
                throw Error(column, e.Message);
            }
        }

        // /S and /P for every layer that takes them; /D and /G for a convolution alone.
        private (int? Stride, int? Padding, int? Dilation, int? Groups) Options(string allowed, bool convolution)
        {
            int? stride = null, padding = null, dilation = null, groups = null;
            while (TryChar('/'))
            {
                int column = Column;
                if (TryKeyword("S"))
                {
                    if (stride is not null) throw Error(column, "the stride is given twice");
                    stride = Number("the stride after /S, e.g. /S2");
                }
                else if (TryKeyword("P"))
                {
                    if (padding is not null) throw Error(column, "the padding is given twice");
                    padding = Number("the padding after /P, e.g. /P1", minimum: 0);
                }
                else if (convolution && TryKeyword("D"))
                {
                    if (dilation is not null) throw Error(column, "the dilation is given twice");
                    dilation = Number("the dilation after /D, e.g. /D2");
                }
                else if (convolution && TryKeyword("G"))
                {
                    if (groups is not null) throw Error(column, "the number of groups is given twice");
                    groups = Number("the number of groups after /G, e.g. /G2");
                }
                else
                {
                    throw Error($"expected {allowed} after '/', found '{Rest()}'");
                }
            }
            return (stride, padding, dilation, groups);
        }

        private int Number(string what, int minimum = 1)
        {
            int start = _pos;
            while (!AtEnd && char.IsAsciiDigit(text[_pos])) _pos++;
            if (start == _pos)
            {
                _pos = start;
                throw Error($"expected {what}, found {(AtEnd ? "the end of the spec" : $"'{Rest()}'")}");
            }
            if (!int.TryParse(text.AsSpan(start, _pos - start), NumberStyles.None, CultureInfo.InvariantCulture, out int value))
            {
                throw Error(start + 1, $"{what}: {text[start.._pos]} is too large");
            }
            if (value < minimum) throw Error(start + 1, $"{what} must be at least {minimum}, got {value}");
            return value;
        }

        private void Expect(char c, string what)
        {
            if (!TryChar(c)) throw Error($"expected {what}, found {(AtEnd ? "the end of the spec" : $"'{Rest()}'")}");
        }

        private bool TryChar(char c)
        {
            if (AtEnd || char.ToUpperInvariant(text[_pos]) != char.ToUpperInvariant(c)) return false;
            _pos++;
            return true;
        }

        private bool TryString(string s)
        {
            if (string.CompareOrdinal(text, _pos, s, 0, s.Length) != 0) return false;
            _pos += s.Length;
            return true;
        }

        private bool TryKeyword(string keyword)
        {
            if (_pos + keyword.Length > text.Length
                || string.Compare(text, _pos, keyword, 0, keyword.Length, StringComparison.OrdinalIgnoreCase) != 0)
            {
                return false;
            }
            _pos += keyword.Length;
            return true;
        }

        private string Word()
        {
            int end = _pos;
            while (end < text.Length && (char.IsAsciiLetterOrDigit(text[end]) || text[end] is '-' or '/')) end++;
            return end == _pos ? text[_pos].ToString() : text[_pos..end];
        }

        // A short excerpt of what follows, for "found '...'".
        private string Rest()
        {
            string rest = text[_pos..];
            return rest.Length <= 12 ? rest : rest[..12] + "…";
        }
    }
}

/// <summary>
/// A network spec that does not parse or whose geometry does not fit: the reason, and where.
/// The message has three lines: the column and the reason, the spec, and a caret under the column.
/// </summary>
public sealed class SpecException : ArgumentException
{
    public SpecException(string spec, int column, string reason)
        : base(Compose(spec, column, reason))
    {
        Spec = spec;
        Column = column;
        Reason = reason;
    }

    /// <summary>The spec as given.</summary>
    public string Spec { get; }

    /// <summary>1-based column of the character where the problem was found.</summary>
    public int Column { get; }

    /// <summary>What is wrong, without the spec and the caret.</summary>
    public string Reason { get; }

    private static string Compose(string spec, int column, string reason)
    {
        // Tabs and newlines would move the caret: show them as spaces.
        string line = new(spec.Select(c => char.IsWhiteSpace(c) ? ' ' : c).ToArray());
        return $"spec, column {column}: {reason}\n  {line}\n  {new string(' ', Math.Max(0, column - 1))}^";
    }
}
