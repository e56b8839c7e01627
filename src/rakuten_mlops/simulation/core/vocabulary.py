"""Word lists behind the sample generator: per-class nouns, brands and details, per-family shared words.

Families share vocabulary on purpose so that some listings are ambiguous from text alone,
as in the real catalogue (a "coffret" can be a book lot, a game or a toy).
"""

from __future__ import annotations

FAMILIES: dict[str, tuple[int, ...]] = {
    "books": (10, 2280, 2403, 2705),
    "games": (40, 50, 60, 2462, 2905),
    "toys": (1140, 1180, 1280, 1281, 1300, 1302),
    "home": (1560, 1920, 2060, 2582, 2583, 2585),
    "baby": (1301, 1320),
    "other": (1160, 1940, 2220, 2522),
}

FAMILY_WORDS: dict[str, tuple[str, ...]] = {
    "books": ("livre", "édition", "tome", "auteur", "collection", "volume", "lecture", "format poche"),
    "games": ("jeu", "nintendo", "playstation", "xbox", "sony", "console", "compatible", "édition"),
    "toys": ("jouet", "enfant", "boîte", "figurine", "collection", "à partir de 3 ans", "jeu", "coffret"),
    "home": ("maison", "jardin", "extérieur", "intérieur", "design", "moderne", "résistant", "dimensions"),
    "baby": ("bébé", "naissance", "coton", "doux", "enfant", "0-3 mois", "lot de 3"),
    "other": ("lot", "qualité", "pack", "original", "neuf", "idéal cadeau"),
}

# code: (nouns, brands, details) — details are sizes, references or qualifiers.
CLASS_WORDS: dict[int, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    10: (
        ("roman", "livre ancien", "essai", "biographie", "récit"),
        ("Gallimard", "Flammarion", "Le Seuil", "Albin Michel"),
        ("bon état", "occasion", "1987", "broché", "annoté", "couverture usée"),
    ),
    2280: (
        ("magazine", "revue", "numéro", "hebdomadaire", "mensuel"),
        ("Paris Match", "Le Journal des Arts", "Auto Plus", "Science & Vie"),
        ("n° 133", "n° 1254", "du 28/09/2001", "spécial", "hors-série"),
    ),
    2403: (
        ("lot de livres", "lot bd", "série complète", "lot mangas", "lot romans"),
        ("Dargaud", "Glénat", "Dupuis", "Casterman"),
        ("lot de 10", "tomes 1 à 12", "lot de 5", "intégrale", "collection complète"),
    ),
    2705: (
        ("roman", "livre", "guide", "bande dessinée", "album"),
        ("Hachette", "Larousse", "Pocket", "J'ai Lu"),
        ("neuf", "isbn 978-2-07", "nouvelle édition", "grand format", "parution 2018"),
    ),
    40: (
        ("jeu vidéo", "câble hdmi", "carte mémoire", "casque gamer", "chargeur"),
        ("Sony", "Nintendo", "Microsoft", "Ubisoft", "Bigben"),
        ("import", "version japonaise", "pal", "usb", "16 go"),
    ),
    50: (
        ("manette", "stylet", "support", "housse de protection", "station de charge"),
        ("Speedlink", "Nacon", "Hori", "Bigben", "Thrustmaster"),
        ("sans fil", "ergonomique", "bluetooth", "compatible wii u", "ps4"),
    ),
    60: (
        ("console", "console portable", "pack console", "console rétro", "mini console"),
        ("Nintendo", "Sony", "Sega", "Microsoft", "Atari"),
        ("500 go", "1 to", "avec 2 manettes", "édition limitée", "hdmi"),
    ),
    2462: (
        ("jeu occasion", "lot de jeux", "jeu complet", "cartouche", "jeu en boîte"),
        ("Nintendo", "Sony", "Sega", "Electronic Arts", "Capcom"),
        ("sans notice", "complet", "testé", "pal fr", "boîte abîmée"),
    ),
    2905: (
        ("jeu pc", "code de téléchargement", "clé steam", "jeu à télécharger", "extension"),
        ("Steam", "Ubisoft", "Electronic Arts", "Bethesda", "Focus"),
        ("windows 10", "téléchargement", "code digital", "version intégrale", "dlc"),
    ),
    1140: (
        ("figurine", "statuette", "figurine pop", "buste", "figurine articulée"),
        ("Funko", "Bandai", "Tsume", "Hasbro", "Banpresto"),
        ("15 cm", "vinyle", "édition collector", "one piece", "marvel"),
    ),
    1180: (
        ("figurine warhammer", "wargame", "miniatures", "jeu de figurines", "décor de table"),
        ("Games Workshop", "Citadel", "Privateer Press", "Mantic"),
        ("28 mm", "à peindre", "space marine", "armée", "socle"),
    ),
    1280: (
        ("peluche", "déguisement", "poupée", "voiture miniature", "jouet d'éveil"),
        ("Disney", "Playmobil", "Lego", "Vtech", "Mattel"),
        ("taille 6 ans", "30 cm", "lavable", "sonore", "marionnette"),
    ),
    1281: (
        ("jeu de société", "jeu de cartes", "puzzle", "jeu éducatif", "jeu de plateau"),
        ("Hasbro", "Asmodee", "Ravensburger", "Djeco", "Haba"),
        ("2 à 4 joueurs", "dès 5 ans", "1000 pièces", "famille", "version française"),
    ),
    1300: (
        ("drone", "hélicoptère rc", "voiture radiocommandée", "bateau rc", "maquette"),
        ("DJI", "Syma", "Revell", "Tamiya", "Parrot"),
        ("2.4 ghz", "caméra hd", "1/10", "batterie lipo", "moteur brushless"),
    ),
    1302: (
        ("trampoline", "balançoire", "toboggan", "piscine à balles", "jeu de plein air"),
        ("Hudora", "Smoby", "Decathlon", "Intex"),
        ("diamètre 305 cm", "filet de sécurité", "galvanisé", "portique", "extérieur"),
    ),
    1560: (
        ("table basse", "chaise", "armoire", "étagère", "commode", "canapé"),
        ("Ikea", "Conforama", "Maisons du Monde", "Alinea"),
        ("chêne massif", "120 x 60 cm", "3 tiroirs", "scandinave", "métal noir"),
    ),
    1920: (
        ("housse de couette", "coussin", "taie d'oreiller", "drap housse", "plaid"),
        ("Linvosges", "Dodo", "Tradilinge", "Homemaison"),
        ("240 x 220 cm", "coton", "45 x 45 cm", "polaire", "microfibre"),
    ),
    2060: (
        ("décoration murale", "vase", "cadre photo", "guirlande lumineuse", "sticker mural"),
        ("Atmosphera", "Maisons du Monde", "Zodio", "Home Deco"),
        ("led", "noël", "vintage", "bohème", "doré"),
    ),
    2582: (
        ("salon de jardin", "parasol", "transat", "table de jardin", "chaise longue"),
        ("Hespéride", "Keter", "Ozalide", "Proloisirs"),
        ("résine tressée", "aluminium", "6 places", "pliable", "anti-uv"),
    ),
    2583: (
        ("piscine hors sol", "spa gonflable", "pompe filtration", "bâche piscine", "robot piscine"),
        ("Intex", "Bestway", "Gré", "Zodiac", "Lay-Z-Spa"),
        ("filtre à sable", "4 x 1.2 m", "liner", "skimmer", "chlore"),
    ),
    2585: (
        ("perceuse", "tondeuse", "taille-haie", "scie circulaire", "coffret d'outils"),
        ("Bosch", "Makita", "Black & Decker", "Ryobi", "Stanley"),
        ("18v", "sans fil", "1200 w", "lame 45 cm", "batterie lithium"),
    ),
    1301: (
        ("chaussettes", "body bébé", "pyjama", "bonnet", "grenouillère"),
        ("Petit Bateau", "Absorba", "Dim", "Sergent Major"),
        ("taille 18 mois", "lot de 5 paires", "coton bio", "rayé", "antidérapantes"),
    ),
    1320: (
        ("poussette", "siège auto", "chaise haute", "biberon", "matelas à langer"),
        ("Chicco", "Bébé Confort", "Tommee Tippee", "Babymoov"),
        ("isofix", "groupe 0+", "pliable", "sans bpa", "réglable"),
    ),
    1160: (
        ("carte pokémon", "carte yu-gi-oh", "booster", "carte magic", "display"),
        ("Pokémon", "Konami", "Wizards of the Coast", "Panini"),
        ("holographique", "rare", "vf", "near mint", "édition 1"),
    ),
    1940: (
        ("café", "thé", "chocolat", "épices", "bonbons", "confiture"),
        ("Nespresso", "Lipton", "Lindt", "Ducros", "Haribo"),
        ("500 g", "bio", "lot de 6", "capsules", "sans gluten"),
    ),
    2220: (
        ("croquettes", "arbre à chat", "laisse", "aquarium", "niche"),
        ("Royal Canin", "Purina", "Trixie", "Zolux"),
        ("chien", "chat", "10 kg", "taille m", "rongeur"),
    ),
    2522: (
        ("cahier", "stylo", "agenda", "classeur", "carnet de notes"),
        ("Clairefontaine", "Bic", "Oxford", "Exacompta", "Moleskine"),
        ("a5", "96 pages", "petits carreaux", "lot de 12", "2019"),
    ),
}

# A few class nouns in German and English: the real catalogue holds such listings too.
FOREIGN_NOUNS: dict[int, tuple[tuple[str, ...], tuple[str, ...]]] = {
    10: (("Roman", "Buch"), ("novel", "book")),
    2280: (("Zeitschrift",), ("magazine",)),
    2403: (("Bücherpaket",), ("book bundle",)),
    2705: (("Buch",), ("book",)),
    40: (("Videospiel",), ("video game",)),
    50: (("Controller",), ("controller", "charging stand")),
    60: (("Spielkonsole",), ("game console",)),
    2462: (("gebrauchtes Spiel",), ("used game",)),
    2905: (("PC-Spiel",), ("pc game download",)),
    1140: (("Sammelfigur",), ("figure",)),
    1180: (("Tabletop Miniaturen",), ("miniatures",)),
    1280: (("Plüschtier", "Kostüm"), ("plush toy", "costume")),
    1281: (("Brettspiel",), ("board game",)),
    1300: (("Ferngesteuertes Auto",), ("rc drone",)),
    1302: (("Trampolin",), ("swing set",)),
    1560: (("Couchtisch",), ("coffee table",)),
    1920: (("Kissenbezug",), ("cushion cover",)),
    2060: (("Wanddeko",), ("wall decor",)),
    2582: (("Gartenmöbel",), ("garden furniture",)),
    2583: (("Aufstellpool",), ("above ground pool",)),
    2585: (("Bohrmaschine",), ("cordless drill",)),
    1301: (("Babysocken",), ("baby socks",)),
    1320: (("Kinderwagen",), ("stroller",)),
    1160: (("Sammelkarte",), ("trading card",)),
    1940: (("Kaffee",), ("coffee",)),
    2220: (("Katzenbaum",), ("cat tree",)),
    2522: (("Notizbuch",), ("notebook",)),
}

COLOURS = ("rouge", "bleu", "noir", "blanc", "vert", "gris", "rose", "beige", "jaune")
DESCRIPTION_OPENERS = (
    "Produit {adj} de la marque {brand}.",
    "Découvrez ce {noun} {brand}, idéal pour un usage quotidien.",
    "Le {noun} {brand} allie qualité et praticité.",
    "Vendu par un professionnel, expédition rapide et soignée.",
    "Article conforme à la description, livré dans son emballage d'origine.",
)
ADJECTIVES = ("élégant", "pratique", "robuste", "léger", "authentique", "très demandé", "garanti")
